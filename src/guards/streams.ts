/**
 * Subscriptions must not outlive the right to watch them.
 *
 * `useStreamGuards` wraps every subscription's result stream:
 * - on SSE (Yoga's distinct-connection mode and graphql-sse's single-connection mode) the stream
 *   ends with a final UNAUTHENTICATED error at the token's `exp` ("token expired") or when the
 *   user's tokens are revoked ("token revoked: …", "account disabled"). graphql-ws does this per
 *   connection instead (guardConnections: close 4403, in-band refresh), so its streams are left alone here,
 *   except those of an operation that carried its own token (GraphiQL's Headers tab, see ws.ts):
 *   the connection does not know that token, so its stream ends here like an SSE stream;
 * - on every transport, an error thrown by a stream (an AppError a module ends its stream with, a
 *   subscriber cut off as too slow) becomes one final result with the catalogue's
 *   `extensions.code` (masked like any other error), then the stream completes, instead of a
 *   transport-specific failure with a raw message.
 *
 * `guardConnections` does the same for whole connections (a graphql-ws socket, a graphql-sse
 * single-connection stream: the token that opened it), as an observer of the connection registry.
 */
import type { ExecutionResult, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Context } from '../context.js';
import { unauthenticated, type AppError } from '../errors.js';
import type { ConnectionObserver } from '../realtime/connections.js';
import type { UserAccess } from './access.js';
import type { Viewer } from './auth.js';
import type { SubscribeHooks } from '../realtime/stream.js';

/** How a stream ends early: with one last value, or by throwing. */
export type StreamEnding<T> = { value: T } | { error: unknown };

/**
 * `source` until `ending` resolves; then `source.return()` runs (releasing its topic subscription
 * at once) and the stream yields the ending's value (then completes) or throws its error. With
 * `onSourceError`, an error thrown by `source` becomes a last value too. `onDone` runs once,
 * however the stream ends (completion, error, ending, the consumer's return()).
 */
export function streamUntil<T>(
  source: AsyncIterator<T>,
  ending: Promise<StreamEnding<T>>,
  opts: { onSourceError?: (error: unknown) => T; onDone?: () => void } = {},
): AsyncIterableIterator<T> {
  type Outcome = { kind: 'next'; result: IteratorResult<T> } | { kind: 'error'; error: unknown } | { kind: 'end' };
  let finished = false;
  let ended: StreamEnding<T> | undefined;
  // The next() waiting for the source, woken by the ending. (Not Promise.race: racing a promise that
  // may never settle leaves one reaction on it per event, for as long as the stream lives.)
  let waiting: ((outcome: Outcome) => void) | undefined;
  void ending.then((e) => {
    ended ??= e;
    const wake = waiting;
    waiting = undefined;
    wake?.({ kind: 'end' });
  });

  const finish = (): void => {
    if (finished) return;
    finished = true;
    opts.onDone?.();
  };
  const stop = (e: StreamEnding<T>): IteratorResult<T> => {
    finish();
    void Promise.resolve()
      .then(() => source.return?.())
      .catch(() => undefined);
    if ('error' in e) throw e.error;
    return { value: e.value, done: false };
  };

  const iterator: AsyncIterableIterator<T> = {
    async next() {
      if (finished) return { value: undefined, done: true };
      if (ended) return stop(ended);
      const outcome = await new Promise<Outcome>((resolve) => {
        waiting = resolve;
        const settle = (o: Outcome): void => {
          if (waiting !== resolve) return; // the ending came first
          waiting = undefined;
          resolve(o);
        };
        source.next().then(
          (result) => settle({ kind: 'next', result }),
          (error: unknown) => settle({ kind: 'error', error }),
        );
      });
      if (outcome.kind === 'end') return stop(ended!);
      if (outcome.kind === 'error') {
        finish();
        if (opts.onSourceError) return { value: opts.onSourceError(outcome.error), done: false };
        throw outcome.error;
      }
      if (outcome.result.done) finish();
      return outcome.result;
    },
    async return() {
      const wasFinished = finished;
      finish();
      const wake = waiting;
      waiting = undefined;
      wake?.({ kind: 'next', result: { value: undefined, done: true } });
      if (!wasFinished) await source.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** setTimeout's longest delay; later deadlines wait in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` at `epochMs` (at once if past); returns a cancel function. */
export function runAt(epochMs: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const delay = epochMs - Date.now();
    if (delay <= 0) return void (timer = setTimeout(fn, 0));
    timer = setTimeout(delay > MAX_TIMER_MS ? arm : fn, Math.min(delay, MAX_TIMER_MS));
  };
  arm();
  return () => clearTimeout(timer);
}

/** Resolves with the reason the viewer's right to watch ends (token expiry, revocation); `cancel` stops watching. */
function viewerEnding(viewer: Viewer, access: UserAccess): { reason: Promise<AppError>; cancel: () => void } {
  let resolve!: (reason: AppError) => void;
  const reason = new Promise<AppError>((r) => (resolve = r));
  const cancelTimer =
    viewer.expiresAt === undefined
      ? () => undefined
      : runAt(viewer.expiresAt * 1000, () => resolve(unauthenticated('token expired')));
  const stopWatch = access.watchUser(viewer, resolve);
  return {
    reason,
    cancel: () => {
      cancelTimer();
      stopWatch();
    },
  };
}

/**
 * Connections do not outlive their token either (src/realtime/connections.ts): one whose
 * transport can end it (`end`: a graphql-ws socket, a graphql-sse single-connection stream) ends
 * with UNAUTHENTICATED "token expired" at its viewer's `exp` (re-armed by a refresh) and with the
 * reason when the user's tokens are revoked, on any instance. Streams its transport guards per
 * operation (a distinct SSE stream, an operation's own token on graphql-ws) are left to
 * useStreamGuards.
 */
export function guardConnections(access: UserAccess): ConnectionObserver {
  return (connection) => {
    const { end, viewer } = connection;
    if (!end || !viewer) return undefined;
    let cancelTimer = (): void => undefined;
    const arm = (expiresAt: number | undefined): void => {
      cancelTimer();
      cancelTimer =
        expiresAt === undefined
          ? () => undefined
          : runAt(expiresAt * 1000, () => end(unauthenticated('token expired')));
    };
    arm(viewer.expiresAt);
    const stopWatch = access.watchUser(viewer, end);
    return {
      refreshed: (refreshed) => arm(refreshed.expiresAt),
      closed: () => {
        cancelTimer();
        stopWatch();
      },
    };
  };
}

/** Set by ws.ts on the operations of a graphql-ws connection, which guards itself per connection. */
export interface TransportMarker {
  transport?: 'graphql-ws';
  /** graphql-ws: whose token the viewer is, the connection's (guarded by ws.ts) or the operation's own (guarded here). */
  viewerFrom?: 'connection' | 'operation';
}

/** Only turns an error thrown by `source` into a last value: the cheap wrapper for streams without a deadline. */
export function catchStreamErrors<T>(
  source: AsyncIterator<T>,
  onSourceError: (error: unknown) => T,
): AsyncIterableIterator<T> {
  return new CatchingIterator(source, onSourceError);
}

/** A class rather than an object literal: one per subscription, its methods on the prototype. */
class CatchingIterator<T> implements AsyncIterableIterator<T> {
  private finished = false;
  constructor(
    private readonly source: AsyncIterator<T>,
    private readonly onSourceError: (error: unknown) => T,
  ) {}

  async next(): Promise<IteratorResult<T>> {
    if (this.finished) return { value: undefined, done: true };
    try {
      const result = await this.source.next();
      if (result.done) this.finished = true;
      return result;
    } catch (error) {
      this.finished = true;
      return { value: this.onSourceError(error), done: false };
    }
  }

  async return(): Promise<IteratorResult<T>> {
    if (!this.finished) {
      this.finished = true;
      await this.source.return?.();
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export function useStreamGuards(deps: {
  access: UserAccess;
  maskError: (error: unknown, message: string) => Error;
}): Plugin {
  const asResult = (error: unknown): ExecutionResult => ({
    errors: [deps.maskError(error, 'Unexpected error.') as GraphQLError],
  });
  // One object for every subscription (SubscribeHooks).
  const hooks: SubscribeHooks = {
    onSubscribeResult({ args, result, setResult }) {
      if (!isAsyncIterable(result)) return;
      const context = args.contextValue as Partial<Context> & TransportMarker;
      const guardedByConnection = context.transport === 'graphql-ws' && context.viewerFrom !== 'operation';
      const viewer = guardedByConnection ? null : (context.viewer ?? null);
      const source = (result as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
      if (!viewer) {
        setResult(catchStreamErrors(source, asResult));
        return;
      }
      const { reason, cancel } = viewerEnding(viewer, deps.access);
      setResult(
        streamUntil(
          source,
          reason.then((error) => ({ value: asResult(error) })),
          { onSourceError: asResult, onDone: cancel },
        ),
      );
    },
  };
  return { onSubscribe: () => hooks };
}
