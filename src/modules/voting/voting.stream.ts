import { CompetitionStatus } from '../../generated/prisma/enums.js';
import { cancellableStream } from '../../realtime/stream.js';

import type { TallyEvent } from './voting.events.js';

/**
 * The tally stream ends after the update that says CLOSED (the final standings): on every
 * transport the watcher gets it, then completion. return() closes the source at once.
 */
export function untilClosed(source: AsyncIterableIterator<TallyEvent>): AsyncIterableIterator<TallyEvent> {
  let closed = false;
  const finish = (): IteratorResult<TallyEvent> => {
    void source.return?.();
    return { value: undefined, done: true };
  };
  return cancellableStream(async () => {
    if (closed) return finish();
    const result = await source.next();
    if (!result.done && result.value.data.status === CompetitionStatus.CLOSED) closed = true;
    return result;
  }, finish);
}
