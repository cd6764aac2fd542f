/**
 * A raw text/event-stream reader for tests that check the wire itself (ids, event names, comments),
 * parsed as the SSE spec says: blocks end with a blank line, `field: value` lines, `:` comments.
 */
export interface SseFrame {
  event?: string;
  id?: string;
  /** The data lines, joined with \n; undefined when the block had none. */
  data?: string;
  /** A block of comments only (`:`), e.g. the first byte or a ping. */
  comment: boolean;
}

export interface SseReader {
  readonly frames: SseFrame[];
  /** The `next` events' parsed data, in order. */
  nexts<T = unknown>(): { id?: string; data: T }[];
  /** Resolves with the first frame (old or new) that matches; rejects after timeoutMs or at the end. */
  waitFor(predicate: (frame: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Resolves when the response ends (or fails). */
  readonly ended: Promise<void>;
}

export function parseBlock(block: string): SseFrame {
  const frame: SseFrame = { comment: true };
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    frame.comment = false;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
    if (field === 'event') frame.event = value;
    else if (field === 'id') frame.id = value;
    else if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
  }
  return frame;
}

export function readSse(response: Response): SseReader {
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  let done = false;
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          frames.push(parseBlock(buffer.slice(0, end)));
          buffer = buffer.slice(end + 2);
        }
        for (const wake of waiters) wake();
      }
    } catch {
      // aborted by the test, or the server went away: `ended` either way
    } finally {
      done = true;
      for (const wake of waiters) wake();
    }
  })();
  return {
    frames,
    ended,
    nexts: <T>() =>
      frames.filter((f) => f.event === 'next').map((f) => ({ id: f.id, data: JSON.parse(f.data ?? 'null') as T })),
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = frames.find(predicate);
          if (found) return finish(() => resolve(found));
          if (done)
            finish(() =>
              reject(new Error(`stream ended without a matching frame; got ${JSON.stringify(frames.slice(-5))}`)),
            );
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames.slice(-5))}`)),
            ),
          timeoutMs,
        );
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
  };
}
