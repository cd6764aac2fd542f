/**
 * One connection over one transport, as the client drives it: opened (resolves once it works,
 * rejects with a classified ConnectionFailure), operations started on it, closed. A session that
 * dies after it opened reports it once through `onDown`; the client then opens the next one.
 */
import type { PollPlan } from './documents.js';
import type { FetchFn, Result, TransportName } from './types.js';

/**
 * Why a connection failed:
 * - down: nothing answered, or the server/load balancer failed (refused, reset, 5xx, timeout):
 *   retry the same transport after a backoff;
 * - blocked: something answered but refuses this transport (4xx on the WebSocket upgrade or the
 *   event stream, no streaming body): try the next transport at once;
 * - auth: the server refused the credentials;
 * - rotate: not a failure: the session ends to reconnect with a new token.
 */
export type FailureKind = 'down' | 'blocked' | 'auth' | 'rotate';

export class ConnectionFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConnectionFailure';
  }
}

export interface Operation {
  query: string;
  variables: Record<string, unknown>;
  operationName: string | undefined;
  /** Where the data is in results. */
  responseKey: string;
  /** Resumable fields: the variable holding the cursor. */
  cursorVariable: string | undefined;
  /** How to poll it; without one, a polling session cannot serve the operation. */
  poll: PollPlan | undefined;
}

export interface OperationSink {
  next(result: Result): void;
  /** The server ended the operation. */
  complete(): void;
  /** A cursor beyond the delivered events (a polling page covering events this viewer does not get). */
  cursor?(seq: number): void;
}

export interface Session {
  readonly transport: TransportName;
  readonly url: string;
  /** Starts an operation; returns its stop function (idempotent). */
  start(operation: Operation, sink: OperationSink): () => void;
  /** Runs a query through this session; rejects when the session fails meanwhile. */
  execute(query: string, variables: Record<string, unknown>, operationName?: string): Promise<Result>;
  close(): void;
}

export interface SessionTiming {
  /** An attempt that is not connected by then fails (down). */
  connectTimeoutMs: number;
  /** Liveness checks (graphql-ws ping, an SSE round trip) this often… */
  keepAliveMs: number;
  /** …and a check unanswered for this long ends the session (down). */
  keepAliveTimeoutMs: number;
  pollIntervalMs: number;
}

export interface SessionContext {
  /** The GraphQL endpoint over HTTP (https://…/graphql); the transports derive theirs from it. */
  url: string;
  getToken(): Promise<string | undefined>;
  fetch: FetchFn;
  webSocketImpl: unknown;
  timing: SessionTiming;
  /** The session died after it opened; called at most once. */
  onDown(session: Session, failure: ConnectionFailure): void;
}

export const bearer = (token: string | undefined): Record<string, string> =>
  token ? { authorization: `Bearer ${token}` } : {};

/** A timer that does not keep Node's event loop alive (no-op where timers have no unref). */
export function quietTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const timer = setTimeout(fn, ms);
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/**
 * The part every session shares: `ready` settles once (opened, or the failure that kept it from
 * opening); the first `end` runs the cleanup, tells the listeners (operations waiting on the
 * session) and, for a session that had opened, the client (`onDown`), unless the client closed it.
 */
export class Lifecycle {
  readonly ready: Promise<void>;
  private settle!: { resolve: () => void; reject: (failure: ConnectionFailure) => void };
  private opened = false;
  private done = false;
  private readonly listeners = new Set<(failure: ConnectionFailure) => void>();
  session: Session | undefined;

  constructor(
    private readonly ctx: SessionContext,
    private readonly cleanup: () => void,
  ) {
    this.ready = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ready.catch(() => undefined); // a caller that never awaits it must not see an unhandled rejection
  }

  get ended(): boolean {
    return this.done;
  }

  open(session: Session): void {
    if (this.done) return;
    this.session = session;
    this.opened = true;
    this.settle.resolve();
  }

  end(failure: ConnectionFailure, report = true): void {
    if (this.done) return;
    this.done = true;
    this.cleanup();
    for (const listener of [...this.listeners]) listener(failure);
    this.listeners.clear();
    if (!this.opened) this.settle.reject(failure);
    else if (report && this.session) this.ctx.onDown(this.session, failure);
  }

  onEnd(listener: (failure: ConnectionFailure) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Fails the attempt if it has not opened within the connect timeout. */
  async opening(): Promise<void> {
    const timer = quietTimer(
      () => this.end(new ConnectionFailure('down', `not connected within ${this.ctx.timing.connectTimeoutMs} ms`)),
      this.ctx.timing.connectTimeoutMs,
    );
    try {
      await this.ready;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A query run through a streaming session's `start` (graphql-ws and graphql-sse run queries too). */
export function executeThrough(
  session: Session,
  lifecycle: Lifecycle,
  query: string,
  variables: Record<string, unknown>,
  operationName?: string,
): Promise<Result> {
  return new Promise<Result>((resolve, reject) => {
    if (lifecycle.ended) {
      reject(new ConnectionFailure('down', 'connection lost'));
      return;
    }
    let result: Result | undefined;
    const off = lifecycle.onEnd((failure) => reject(failure));
    session.start(
      { query, variables, operationName, responseKey: '', cursorVariable: undefined, poll: undefined },
      {
        next: (r) => (result ??= r),
        complete: () => {
          off();
          if (result) resolve(result);
          else reject(new ConnectionFailure('down', 'the server ended the query without a result'));
        },
      },
    );
  });
}
