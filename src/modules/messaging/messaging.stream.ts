/**
 * Viewer-bound streams of a conversation that end when the viewer loses access.
 *
 * `untilAccessLost` runs a source stream (messages in seq order, receipts, typing) next to the
 * conversation's `conversationAccess` topic. When an access event newer than the subscription
 * (seq > afterSeq) names the viewer, or a source value shows the viewer is no longer a recipient,
 * the stream yields one ACCESS_LOST marker and then completes; the subscription's resolver turns
 * the marker into a FORBIDDEN error, so clients get FORBIDDEN as the stream's last event.
 * `return()` (client unsubscribed) closes both topic subscriptions at once.
 */
import type { TopicSubscription } from '../../realtime/event-bus.js';
import type { ConversationAccessEvent } from './messaging.events.js';
import { cancellableStream } from '../../realtime/stream.js';

export interface AccessLost {
  readonly accessLost: true;
  readonly conversationId: string;
}

export const isAccessLost = (value: unknown): value is AccessLost =>
  typeof value === 'object' && value !== null && (value as Partial<AccessLost>).accessLost === true;

export interface UntilAccessLostOptions<T> {
  conversationId: string;
  viewerId: string;
  /** The access topic's seq read before the viewer's participation was checked. */
  afterSeq: number;
  /** A source value that proves the viewer had already lost access when it was committed. */
  lostIn?: (value: T) => boolean;
  /** Source values this viewer does not get (its own echoes, stale ones). */
  skip?: (value: T) => boolean;
}

type Step<T> =
  { from: 'source'; result: IteratorResult<T> } | { from: 'access'; result: IteratorResult<ConversationAccessEvent> };

export function untilAccessLost<T>(
  source: AsyncIterator<T>,
  access: TopicSubscription<ConversationAccessEvent>,
  opts: UntilAccessLostOptions<T>,
): AsyncIterableIterator<T | AccessLost> {
  let sourceNext: Promise<Step<T>> | undefined;
  let accessNext: Promise<Step<T>> | undefined;
  let state: 'open' | 'lost' | 'done' = 'open';

  const close = (): void => {
    access.close();
    void source.return?.();
  };
  const finish = (): IteratorResult<T | AccessLost> => {
    if (state !== 'done') {
      state = 'done';
      close();
    }
    return { value: undefined, done: true };
  };
  const lose = (): IteratorResult<T | AccessLost> => {
    state = 'lost';
    close();
    return { value: { accessLost: true, conversationId: opts.conversationId }, done: false };
  };

  return cancellableStream(async () => {
    if (state === 'lost') return finish();
    if (state === 'done') return { value: undefined, done: true };
    for (;;) {
      sourceNext ??= source.next().then((result) => ({ from: 'source' as const, result }));
      accessNext ??= access.next().then((result) => ({ from: 'access' as const, result }));
      const step = await Promise.race([sourceNext, accessNext]);
      if (state !== 'open') return { value: undefined, done: true };
      if (step.from === 'access') {
        accessNext = undefined;
        if (step.result.done) return finish();
        const event = step.result.value;
        if (event.seq > opts.afterSeq && event.data.userIds.includes(opts.viewerId)) return lose();
        continue;
      }
      sourceNext = undefined;
      if (step.result.done) return finish();
      const value = step.result.value;
      if (opts.lostIn?.(value)) return lose();
      if (opts.skip?.(value)) continue;
      return { value, done: false };
    }
  }, finish);
}
