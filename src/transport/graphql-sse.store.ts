/**
 * Where graphql-sse's single-connection streams are, for every process that may get one of their
 * requests (graphql-sse-protocol.ts): `WORKERS` > 1 deals one client's PUT, stream and operations
 * to different workers, and a load balancer without sticky routing does the same across hosts.
 *
 * The stream itself lives in the process whose GET (or POST) opened it, and so do all its
 * operations: one posted to another process is forwarded there (`GraphqlSseRelay`) and runs next
 * to its stream, through the same code as one posted there. The store keeps what the other
 * processes must know to do that, per token:
 * - a reservation (PUT) not yet connected, with the operations posted to it before its stream
 *   opened (their requests, in order, to run once it does), for `reservationTtlMs` from the PUT;
 * - once connected, the instance that holds the stream, for as long as it lives (Redis: a key
 *   whose TTL that instance refreshes, so the entry of an instance that died goes too).
 * Memory: one process, where everything is local (no relay). Redis: every instance.
 */

/** An HTTP request as another process can rebuild it (graphql-sse-protocol.ts). */
export interface RequestEnvelope {
  method: string;
  url: string;
  headers: [string, string][];
  body: string | null;
  /** The client's IP as the process that received the request saw it (peer or X-Forwarded-For). */
  clientIp: string;
}

/** An operation posted before its stream connected: run by the process that connects it. */
export interface PendingOperation {
  id: string;
  request: RequestEnvelope;
}

export type StreamLocation = { state: 'unknown' } | { state: 'reserved' } | { state: 'connected'; owner: string };

export interface GraphqlSseStore {
  /** A new reservation; it is forgotten after reservationTtlMs unless a stream connects to it. */
  reserve(token: string): Promise<void>;
  /**
   * A stream opens on `owner` (this instance): the operations posted before, in the order they
   * were posted (they leave the store); 'unknown' for no such reservation, 'open' for one that
   * is connected already. While `owner` holds it, the entry is kept alive until `release`.
   */
  connect(token: string, owner: string): Promise<{ pending: PendingOperation[] } | 'unknown' | 'open'>;
  /** Where a token's stream is. */
  locate(token: string): Promise<StreamLocation>;
  /**
   * An operation posted to a reservation not connected yet: 'queued', 'duplicate' (its id is
   * queued already), 'full' (`max` are queued), or where the stream is now if that changed.
   */
  enqueue(
    token: string,
    operation: PendingOperation,
    max: number,
  ): Promise<'queued' | 'duplicate' | 'full' | StreamLocation>;
  /** DELETE of an operation queued on a reservation: 'removed' (also when it was not queued), or where the stream is now. */
  dequeue(token: string, operationId: string): Promise<'removed' | StreamLocation>;
  /** The stream connected by this instance ended: its entry goes. */
  release(token: string): Promise<void>;
  /** Stops timers; releases still in flight are written first. */
  close(): Promise<void>;
}

/** A request for a stream held by another instance, and that instance's answer. */
export type RelayedRequest =
  | { kind: 'operation'; token: string; request: RequestEnvelope }
  | { kind: 'delete'; token: string; operationId: string };

export interface RelayedAnswer {
  status: number;
  headers: [string, string][];
  body: string | null;
}

/** Requests between instances (Redis only: in one process every stream is local). */
export interface GraphqlSseRelay {
  /** Resolves once requests forwarded to this instance reach it: before it may hold a stream. */
  readonly ready: Promise<void>;
  /**
   * Delivers `request` to instance `owner` and resolves with its answer; 'gone' when no such
   * instance listens (it stopped or died), 'timeout' when it does not answer within the relay's
   * timeout.
   */
  forward(owner: string, request: RelayedRequest): Promise<RelayedAnswer | 'gone' | 'timeout'>;
  /** How this instance answers the requests forwarded to it (set once, by the handler). */
  serve(answer: (request: RelayedRequest) => Promise<RelayedAnswer>): void;
  /** Stops listening; forwards still waiting resolve 'gone'. */
  close(): Promise<void>;
}
