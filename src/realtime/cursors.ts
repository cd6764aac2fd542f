/**
 * Stream cursors outside the selection: the seq of the event each subscription result was made
 * from, whatever the client selected, so that SSE can write it as the event's `id:` (a browser's
 * EventSource sends it back as `Last-Event-ID` when it reconnects), and a `Last-Event-ID` that
 * came in becomes the operation's resume cursor.
 *
 * How the seq travels: every Subscription field's source stream is wrapped (the Pothos plugin in
 * src/schema/stream-cursors.plugin.ts) so that pulling an event records its seq in the operation's
 * context; graphql-js executes that event next, and `useStreamCursors` (the innermost subscribe
 * wrapper) tags the result it produced with that seq. Results are tagged, not changed: no field
 * or extension is added to what clients receive.
 */
import type { ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { badInput } from '../errors.js';

export interface CursorContext {
  /** A resume cursor the transport received outside the operation (SSE `Last-Event-ID`). */
  lastEventSeq?: number;
  /**
   * The seq of the event the subscription's source produced last, and when that event was
   * published (epoch ms; for the delivery-lag metric), written by trackCursor.
   */
  streamCursor?: { seq?: number; publishedAt?: number };
}

const SEQ = Symbol('ovation.seq');
const PUBLISHED_AT = Symbol('ovation.publishedAt');
type Tagged = ExecutionResult & { [SEQ]?: number; [PUBLISHED_AT]?: number };

/** The seq of the event a subscription result was made from, when it has one. */
export const seqOf = (result: ExecutionResult): number | undefined => (result as Tagged)[SEQ];

/** When the event a subscription result was made from was published (epoch ms), when known. */
export const publishedAtOf = (result: ExecutionResult): number | undefined => (result as Tagged)[PUBLISHED_AT];

export function tagSeq(result: ExecutionResult, seq: number): void {
  Object.defineProperty(result, SEQ, { value: seq, enumerable: false, configurable: true });
}

/** A source event stream whose events' seqs are recorded in the context as they are pulled. */
export function trackCursor<T>(source: AsyncIterable<T>, context: CursorContext): AsyncIterableIterator<T> {
  const slot = (context.streamCursor ??= {});
  const inner = source[Symbol.asyncIterator]();
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      const result = await inner.next();
      if (!result.done) {
        const event = result.value as { seq?: unknown; publishedAt?: unknown } | null;
        slot.seq = typeof event?.seq === 'number' ? event.seq : undefined;
        const publishedAt = typeof event?.publishedAt === 'string' ? Date.parse(event.publishedAt) : NaN;
        slot.publishedAt = Number.isNaN(publishedAt) ? undefined : publishedAt;
      }
      return result;
    },
    return: () => (inner.return ? inner.return() : Promise.resolve({ value: undefined, done: true })),
    throw: (error?: unknown) => (inner.throw ? inner.throw(error) : Promise.reject(error)),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** Maps an async iterator's values, keeping `return()` immediate (the client unsubscribed). */
function mapIterator<T, U>(source: AsyncIterator<T>, map: (value: T) => U): AsyncIterableIterator<U> {
  const iterator: AsyncIterableIterator<U> = {
    async next() {
      const result = await source.next();
      return result.done ? result : { value: map(result.value), done: false };
    },
    return: async () => ((await source.return?.()) ?? { value: undefined, done: true }) as IteratorResult<U>,
    throw: async (error?: unknown) => {
      if (source.throw) return (await source.throw(error)) as IteratorResult<U>;
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/**
 * Tags every subscription result with its event's seq (and publish time). Register it before the plugins that wrap
 * subscribe further (shared subscriptions): it must wrap graphql-js's own subscribe directly.
 */
export function useStreamCursors(): Plugin {
  return {
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      setSubscribeFn(async (args) => {
        const result: unknown = await subscribeFn(args);
        if (!isAsyncIterable(result)) return result;
        const context = args.contextValue as CursorContext;
        return mapIterator((result as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator](), (value) => {
          const seq = context.streamCursor?.seq;
          if (seq !== undefined) tagSeq(value, seq);
          const publishedAt = context.streamCursor?.publishedAt;
          if (publishedAt !== undefined)
            Object.defineProperty(value, PUBLISHED_AT, { value: publishedAt, enumerable: false, configurable: true });
          return value;
        });
      });
    },
  };
}

/**
 * `Last-Event-ID` as SSE's distinct-connection mode sends it back (our ids are the event's seq):
 * undefined when absent; BAD_USER_INPUT for an id this server never wrote, rather than silently
 * serving the stream from now on.
 */
export function parseLastEventId(header: string | null | undefined): number | undefined {
  if (header === null || header === undefined || header === '') return undefined;
  const seq = /^\d{1,10}$/.test(header) ? Number(header) : NaN;
  if (!(seq <= 2_147_483_647))
    throw badInput('Last-Event-ID', 'Last-Event-ID must be the id of an event this stream sent (an integer seq)');
  return seq;
}
