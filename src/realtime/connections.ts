/**
 * The one place connections enter: every transport reports the connections it holds here, and
 * everything that cares about connections reads or observes this registry, never a transport.
 *
 * A connection is one channel a client keeps open: a graphql-ws socket (from its upgrade to its
 * close), a stream of Yoga's distinct-connection SSE on /graphql or of graphql-sse's distinct mode
 * (a subscription's response, from when the subscription started), a graphql-sse single-connection
 * stream (from its GET to its response's end). Queries answered over SSE and refused requests are
 * not connections. A connection acts for the viewer its transport authenticated, with what the
 * transport already has (no second authentication): graphql-ws the connection_init token (after
 * the upgrade: `identify`), SSE the subscription's viewer, a graphql-sse stream its stream
 * request's token; anonymous otherwise. An operation on a graphql-ws socket that carries its own
 * token is a connection of its own user while it lives, nested in the socket (`nest`): counted for
 * that user, not as another socket.
 *
 * Who reads it:
 * - `counts()` and `bufferedBytes()` per transport: metrics and the cluster view (src/modules/ops),
 *   so those counts cannot disagree with each other;
 * - observers (`observe`), told when a connection starts acting for a viewer and when it closes:
 *   presence (each is a live connection of its user) and the connection guard (src/guards/streams.ts:
 *   a connection whose transport can end it, `end`, ends at its token's exp and on revocation).
 */
import type { AppError } from '../errors.js';
import type { Viewer } from '../guards/auth.js';

export type ConnectionTransport = 'ws' | 'sse' | 'graphql-sse';
export const CONNECTION_TRANSPORTS: readonly ConnectionTransport[] = ['ws', 'sse', 'graphql-sse'];

export interface Connection {
  readonly transport: ConnectionTransport;
  /** Who it acts for; null: anonymous (so far: a graphql-ws socket before connection_init). */
  readonly viewer: Viewer | null;
  /** Nested in a socket (an operation with its own token): not a transport connection of its own. */
  readonly nested: boolean;
  readonly closed: boolean;
  /**
   * Settles once every observer has taken the viewer (presence has the entry): the transport
   * acknowledges the client then. Never rejects; observers bound their wait. Resolved for an
   * anonymous connection.
   */
  readonly ready: Promise<void>;
  /**
   * Ends it from the server's side, telling the client why (graphql-ws: close 4403 with the
   * reason; a graphql-sse stream: a final result on each operation, then the response ends).
   * Absent: the transport guards each operation instead (a distinct SSE stream is one operation).
   */
  readonly end?: (reason: AppError) => void;
  /** The transport authenticated it as `viewer` (once; nothing after close). Returns `ready`. */
  identify(viewer: Viewer): Promise<void>;
  /** A refreshed token of the same user (graphql-ws in-band refresh): observers re-arm. */
  refresh(viewer: Viewer): void;
  /** A connection of `viewer` inside this one, until its own close() or this one's. */
  nest(viewer: Viewer): Connection;
  /** It ended (idempotent); its nested connections end with it. */
  close(): void;
}

export interface ConnectionOptions {
  /** Authenticated already (SSE streams). */
  viewer?: Viewer | null;
  /** Bytes written for the client that it has not taken yet (metrics). */
  backlog?: () => number;
  end?: (reason: AppError) => void;
}

/** What an observer keeps for one identified connection. */
export interface ConnectionWatch {
  /** The transport waits for it before acknowledging the client (see Connection.ready). */
  ready?: Promise<void>;
  refreshed?(viewer: Viewer): void;
  closed(): void;
}

/** Called when a connection starts acting for a viewer; undefined: not interested in this one. */
export type ConnectionObserver = (connection: Connection) => ConnectionWatch | undefined;

export interface ConnectionRegistry {
  open(transport: ConnectionTransport, options?: ConnectionOptions): Connection;
  /** Registered before the transports accept anything (app.ts); returns the removal. */
  observe(observer: ConnectionObserver): () => void;
  /** Open transport connections per transport (nested ones are not transport connections). */
  counts(): Record<ConnectionTransport, number>;
  /** Bytes written for the clients of those connections that they have not taken yet, per transport. */
  bufferedBytes(): Record<ConnectionTransport, number>;
}

const RESOLVED = Promise.resolve();

export function createConnectionRegistry(deps: {
  onError: (message: string, details: Record<string, unknown>) => void;
}): ConnectionRegistry {
  const observers = new Set<ConnectionObserver>();
  const live = new Set<LiveConnection>();

  class LiveConnection implements Connection {
    viewer: Viewer | null = null;
    closed = false;
    ready: Promise<void> = RESOLVED;
    private watches: ConnectionWatch[] = [];
    private children?: Set<LiveConnection>;

    constructor(
      readonly transport: ConnectionTransport,
      readonly nested: boolean,
      readonly backlog: (() => number) | undefined,
      readonly end: ((reason: AppError) => void) | undefined,
      private readonly parent?: LiveConnection,
    ) {}

    identify(viewer: Viewer): Promise<void> {
      if (this.closed || this.viewer) return this.ready;
      this.viewer = viewer;
      const waits: Promise<void>[] = [];
      for (const observer of observers) {
        const watch = guarded('identifying a connection', () => observer(this));
        if (!watch) continue;
        this.watches.push(watch);
        if (watch.ready) waits.push(watch.ready.catch(() => undefined));
      }
      this.ready = waits.length === 0 ? RESOLVED : Promise.all(waits).then(() => undefined);
      return this.ready;
    }

    refresh(viewer: Viewer): void {
      if (this.closed || !this.viewer) return;
      this.viewer = viewer;
      for (const watch of this.watches) guarded('refreshing a connection', () => watch.refreshed?.(viewer));
    }

    nest(viewer: Viewer): Connection {
      const child = new LiveConnection(this.transport, true, undefined, undefined, this);
      if (this.closed) {
        child.closed = true;
        return child;
      }
      (this.children ??= new Set()).add(child);
      void child.identify(viewer);
      return child;
    }

    close(): void {
      if (this.closed) return;
      this.closed = true;
      live.delete(this);
      this.parent?.children?.delete(this);
      for (const child of [...(this.children ?? [])]) child.close();
      const watches = this.watches;
      this.watches = [];
      for (const watch of watches) guarded('closing a connection', () => watch.closed());
    }
  }

  /** An observer's fault must not break the transport's connection. */
  function guarded<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (error) {
      deps.onError(`connections: ${what} failed`, { error });
      return undefined;
    }
  }

  return {
    open(transport, options = {}) {
      const connection = new LiveConnection(transport, false, options.backlog, options.end);
      live.add(connection);
      if (options.viewer) void connection.identify(options.viewer);
      return connection;
    },
    observe(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    counts() {
      const counts = { ws: 0, sse: 0, 'graphql-sse': 0 };
      for (const connection of live) counts[connection.transport] += 1;
      return counts;
    },
    bufferedBytes() {
      const bytes = { ws: 0, sse: 0, 'graphql-sse': 0 };
      for (const connection of live) bytes[connection.transport] += connection.backlog?.() ?? 0;
      return bytes;
    },
  };
}
