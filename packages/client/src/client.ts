/**
 * The reconnecting client. One session at a time (session.ts) carries every subscription; when
 * it dies the client opens the next one after a jittered backoff and restarts each subscription
 * from its cursor, so the app sees one unbroken stream per subscription.
 *
 * Transports form a ladder, best first (graphql-ws, graphql-sse, polling). An attempt starts at
 * the current rung. A rung that is refused outright ('blocked': a 4xx on the upgrade or the
 * stream) hands over to the next one at once; one that failed `failuresBeforeFallback` times in a
 * row without becoming stable ('down') lets the next one try within the same attempt, so that a
 * blocked WebSocket (which a browser cannot tell from an outage) ends up on SSE, while a server
 * that is down for everyone (the next rung fails too) leaves the ladder where it was. While below
 * the top, the client probes the rungs above every `probeIntervalMs` and moves up when one works.
 */
import type { DocumentNode } from 'graphql';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { prepareSubscription, type PreparedSubscription } from './documents.js';
import { openPollSession } from './poll-session.js';
import { ConnectionFailure, quietTimer, type Session, type SessionContext, type SessionTiming } from './session.js';
import { openSseSession } from './sse-session.js';
import type { FetchFn, OvationSink, Result, ResyncEvent, StatusEvent, TransportName } from './types.js';
import { openWsSession } from './ws-session.js';

/** A document typed by GraphQL Code Generator (the shape of @graphql-typed-document-node/core's). */
export interface TypedDocumentNode<
  TResult = Record<string, unknown>,
  TVariables = Record<string, unknown>,
> extends DocumentNode {
  __apiType?: (variables: TVariables) => TResult;
}

export interface OvationClientOptions {
  /** The GraphQL endpoint over HTTP (`https://api.example.com/graphql`), or several (instances behind no balancer): tried in turn. */
  url: string | readonly string[];
  /** The current token, asked for on every connect, before it expires (in-band refresh) and per polling request. */
  token?: () => string | null | undefined | Promise<string | null | undefined>;
  /** The ladder, best first [ws, sse, poll]. */
  transports?: readonly TransportName[];
  /** WebSocket constructor [globalThis.WebSocket]; Node before 22 needs `ws`'s. Without one, ws is left out. */
  webSocketImpl?: unknown;
  /** fetch [globalThis.fetch]. */
  fetch?: FetchFn;
  /** After RESYNC_REQUIRED: 'auto' restarts the subscription at once (after `onResync`), 'manual' waits for `event.restart()` ['auto']. */
  resync?: 'auto' | 'manual';
  onResync?: (event: ResyncEvent) => void;
  onStatus?: (status: StatusEvent) => void;
  /** Reconnect backoff [first retry after 200 ms ± 50 %, doubling up to 10 s]. */
  retry?: Partial<BackoffOptions>;
  /** Failed attempts on a transport before the next one is tried too [2]. */
  failuresBeforeFallback?: number;
  /** Below the best transport, try the better ones this often [30 s]. */
  probeIntervalMs?: number;
  /** A connection that lasted this long counts as a success: backoff and failure counts start over [1 s]. */
  stableAfterMs?: number;
  /** Close the connection this long after the last subscription ended [1 s]. */
  lazyCloseMs?: number;
  connectTimeoutMs?: number;
  keepAliveMs?: number;
  keepAliveTimeoutMs?: number;
  pollIntervalMs?: number;
}

export interface OvationClient {
  /**
   * Starts a subscription that survives reconnects; returns its unsubscribe. Resumable fields
   * (streams.ts) resume after the last seq delivered; pass `afterSeq` in the variables to start
   * after a cursor the app kept (its variable, or a literal in the document).
   */
  subscribe<TData = Record<string, unknown>, TVariables extends Record<string, unknown> = Record<string, unknown>>(
    document: TypedDocumentNode<TData, TVariables> | DocumentNode | string,
    variables: TVariables,
    sink: OvationSink<TData>,
  ): () => void;
  /** The transport of the live connection, if any. */
  readonly transport: TransportName | undefined;
  /** Ends every subscription (complete) and the connection. */
  dispose(): void;
}

interface Handle {
  session: Session;
  stop(): void;
}

interface Sub {
  prepared: PreparedSubscription;
  variables: Record<string, unknown>;
  sink: OvationSink<Record<string, unknown>>;
  /** Resumable fields: the last seq delivered (or the anchor); null: none yet. */
  cursor: number | null;
  /** The current run started with a cursor, so its events come in seq order (a backlog may not). */
  ordered: boolean;
  anchored: boolean;
  lastSnapshot: string | undefined;
  handle: Handle | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Waiting for `restart()` after RESYNC_REQUIRED. */
  waiting: boolean;
  retries: number;
  authRetries: number;
  done: boolean;
}

const OPEN: Record<TransportName, (ctx: SessionContext) => Promise<Session>> = {
  ws: openWsSession,
  sse: openSseSession,
  poll: openPollSession,
};

const codeOf = (error: { extensions?: Record<string, unknown> }): unknown => error.extensions?.['code'];
const numberOr = (value: unknown, fallback: number | null): number | null =>
  typeof value === 'number' ? value : fallback;

/** Calls into the app; what it throws is rethrown outside the kit's own bookkeeping. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

export function createOvationClient(options: OvationClientOptions): OvationClient {
  const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
  if (urls.length === 0) throw new Error('@ovation/client: url is required');
  const fetchFn: FetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const webSocketImpl = options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket;
  const transports = (options.transports ?? ['ws', 'sse', 'poll']).filter(
    (t) => t !== 'ws' || webSocketImpl !== undefined,
  );
  if (transports.length === 0)
    throw new Error('@ovation/client: no usable transport (ws needs a WebSocket implementation)');
  const backoff: BackoffOptions = { initialDelayMs: 200, maxDelayMs: 10_000, ...options.retry };
  const threshold = Math.max(1, options.failuresBeforeFallback ?? 2);
  const probeIntervalMs = options.probeIntervalMs ?? 30_000;
  const stableAfterMs = options.stableAfterMs ?? 1_000;
  const lazyCloseMs = options.lazyCloseMs ?? 1_000;
  const resyncMode = options.resync ?? 'auto';
  const timing: SessionTiming = {
    connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
    keepAliveMs: options.keepAliveMs ?? 12_000,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5_000,
    pollIntervalMs: options.pollIntervalMs ?? 1_000,
  };

  const prepared = new WeakMap<DocumentNode, PreparedSubscription>();
  const preparedText = new Map<string, PreparedSubscription>();
  const subs = new Set<Sub>();

  let session: Session | undefined;
  let connecting = false;
  /** Bumped whenever pending work must be abandoned (idle close, dispose). */
  let generation = 0;
  let level = 0;
  const failures = new Map<TransportName, number>();
  let attempt = 0;
  let authFailures = 0;
  let urlIndex = 0;
  let stable = false;
  let disposed = false;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let probeTimer: ReturnType<typeof setTimeout> | undefined;
  let stableTimer: ReturnType<typeof setTimeout> | undefined;
  let lingerTimer: ReturnType<typeof setTimeout> | undefined;

  const status = (event: StatusEvent): void => {
    if (options.onStatus) safely(() => options.onStatus!(event));
  };

  async function getToken(): Promise<string | undefined> {
    try {
      return (await options.token?.()) ?? undefined;
    } catch (error) {
      throw new ConnectionFailure('down', `token(): ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }

  const open = (transport: TransportName, url: string): Promise<Session> =>
    OPEN[transport]({
      url,
      getToken,
      fetch: fetchFn,
      webSocketImpl,
      timing,
      onDown: (s, failure) => sessionDown(s, failure),
    });

  const asFailure = (error: unknown): ConnectionFailure =>
    error instanceof ConnectionFailure
      ? error
      : new ConnectionFailure('down', (error as Error)?.message ?? String(error), { cause: error });

  /** One attempt down the ladder from the current rung (see the file's comment). */
  async function openLadder(url: string, gen: number): Promise<Session> {
    let last: ConnectionFailure | undefined;
    for (let index = level; index < transports.length; index += 1) {
      const transport = transports[index]!;
      try {
        const opened = await open(transport, url);
        level = index;
        return opened;
      } catch (error) {
        const failure = (last = asFailure(error));
        if (gen !== generation || failure.kind === 'auth') throw failure;
        const count = (failures.get(transport) ?? 0) + 1;
        failures.set(transport, failure.kind === 'blocked' ? Math.max(count, threshold) : count);
        if (failures.get(transport)! < threshold) throw failure;
      }
    }
    throw last ?? new ConnectionFailure('down', 'no transport');
  }

  async function connect(): Promise<void> {
    if (connecting || session || disposed || subs.size === 0) return;
    connecting = true;
    const gen = (generation += 1);
    const url = urls[urlIndex % urls.length]!;
    status({ state: 'connecting', url, transport: transports[level], attempt });
    let opened: Session;
    try {
      opened = await openLadder(url, gen);
    } catch (error) {
      if (gen !== generation) return;
      connecting = false;
      const failure = asFailure(error);
      if (failure.kind === 'auth' && (authFailures += 1) >= 2) return failAll(failure);
      urlIndex = (urlIndex + 1) % urls.length;
      return scheduleReconnect(failure);
    }
    if (gen !== generation) return opened.close();
    connecting = false;
    adopt(opened);
  }

  function adopt(opened: Session): void {
    session = opened;
    stable = false;
    clearTimeout(stableTimer);
    stableTimer = quietTimer(() => {
      stable = true;
      attempt = 0;
      authFailures = 0;
      failures.set(opened.transport, 0);
    }, stableAfterMs);
    status({ state: 'live', transport: opened.transport, url: opened.url, attempt });
    scheduleProbe();
    for (const sub of subs) {
      clearTimeout(sub.timer);
      sub.timer = undefined;
      startSub(sub);
    }
  }

  function sessionDown(dead: Session, failure: ConnectionFailure): void {
    if (dead !== session) return;
    session = undefined;
    clearTimeout(stableTimer);
    clearTimeout(probeTimer);
    for (const sub of subs) detach(sub);
    if (!stable && failure.kind !== 'rotate') failures.set(dead.transport, (failures.get(dead.transport) ?? 0) + 1);
    stable = false;
    if (failure.kind === 'rotate') return void connect();
    if (urls.length > 1) urlIndex = (urlIndex + 1) % urls.length;
    scheduleReconnect(failure);
  }

  function scheduleReconnect(failure: ConnectionFailure): void {
    if (disposed || subs.size === 0 || reconnectTimer !== undefined) return;
    const delayMs = backoffDelay(attempt, backoff);
    attempt += 1;
    status({ state: 'reconnecting', delayMs, attempt, error: failure, transport: transports[level] });
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      void connect();
    }, delayMs);
  }

  function scheduleProbe(): void {
    clearTimeout(probeTimer);
    if (level === 0 || !session) return;
    const current = session;
    probeTimer = quietTimer(() => void probe(current), Math.round(probeIntervalMs * (0.75 + Math.random() / 2)));
  }

  async function probe(current: Session): Promise<void> {
    for (let index = 0; index < level; index += 1) {
      let better: Session;
      try {
        better = await open(transports[index]!, current.url);
      } catch {
        continue;
      }
      if (session !== current || disposed) return better.close();
      level = index;
      failures.set(better.transport, 0);
      session = undefined;
      for (const sub of subs) detach(sub);
      current.close();
      return adopt(better);
    }
    if (session === current) scheduleProbe();
  }

  /** Ends the current session to open a new one with a fresh token (no backoff). */
  function rotate(): void {
    const current = session;
    if (!current) return;
    sessionDown(current, new ConnectionFailure('rotate', 'new token'));
    current.close();
  }

  function detach(sub: Sub): void {
    const handle = sub.handle;
    sub.handle = undefined;
    handle?.stop();
  }

  function startSub(sub: Sub): void {
    const current = session;
    if (!current || sub.done || sub.handle || sub.waiting) return;
    const p = sub.prepared;
    if (current.transport === 'poll' && !p.poll) return; // waits for a stream (the probe finds one)
    if (p.anchorQuery && sub.cursor === null && !sub.anchored) {
      anchor(sub, current, () => startSub(sub));
      return;
    }
    const variables = p.cursorVariable ? { ...sub.variables, [p.cursorVariable]: sub.cursor } : sub.variables;
    sub.ordered = sub.cursor !== null;
    const handle: Handle = { session: current, stop: () => undefined };
    sub.handle = handle;
    handle.stop = current.start(
      {
        query: p.query,
        variables,
        operationName: p.operationName,
        responseKey: p.responseKey,
        cursorVariable: p.cursorVariable,
        poll: p.poll,
      },
      {
        next: (result) => void (sub.handle === handle && onResult(sub, result)),
        complete: () => void (sub.handle === handle && onComplete(sub)),
        cursor: (seq) => {
          if (sub.handle === handle && (sub.cursor === null || seq > sub.cursor)) sub.cursor = seq;
        },
      },
    );
    if (sub.sink.started && sub.handle === handle) {
      const info = { transport: current.transport, cursor: p.cursorVariable ? sub.cursor : null };
      safely(() => sub.sink.started!(info));
    }
  }

  /** Reads the stream's latest seq, so that the subscription starts after it (streams.ts, `anchor`). */
  function anchor(sub: Sub, current: Session, then: (latest: number | null) => void): void {
    let cancelled = false;
    const handle: Handle = { session: current, stop: () => void (cancelled = true) };
    sub.handle = handle;
    const done = (latest: number | null): void => {
      if (cancelled || sub.handle !== handle) return;
      sub.handle = undefined;
      sub.anchored = true;
      if (latest !== null) sub.cursor = latest;
      then(latest);
    };
    current.execute(sub.prepared.anchorQuery!, sub.variables).then(
      (result) =>
        done(numberOr((result.data?.['anchor'] as { latestSeq?: unknown } | null | undefined)?.latestSeq, null)),
      // The session failed (it restarts every subscription) or the query could not run: start without one.
      () => void (session === current && done(null)),
    );
  }

  function onResult(sub: Sub, result: Result): void {
    const errors = result.errors ?? [];
    const resync = errors.find((e) => codeOf(e) === 'RESYNC_REQUIRED');
    if (resync) {
      detach(sub);
      return handleResync(sub, resync);
    }
    const key = sub.prepared.responseKey;
    const value = result.data?.[key];
    if (value == null && errors.length > 0) {
      const retryable = errors.find((e) => e.extensions?.['retryable'] === true);
      if (retryable) {
        detach(sub);
        return retryLater(sub, numberOr(retryable.extensions?.['retryAfterMs'], null) ?? undefined);
      }
      if (errors.some((e) => codeOf(e) === 'UNAUTHENTICATED') && sub.authRetries < 1) {
        // An expired token on SSE or polling: once more with a fresh one.
        sub.authRetries += 1;
        return rotate();
      }
      return finish(sub, result);
    }
    sub.authRetries = 0;
    sub.retries = 0;
    const stream = sub.prepared.stream;
    let delivered = result;
    if (stream?.kind === 'resumable' && value !== null && typeof value === 'object') {
      const { seq, ...rest } = value as { seq?: unknown };
      if (typeof seq === 'number') {
        if (sub.ordered && sub.cursor !== null && seq <= sub.cursor) return; // delivered already
        sub.cursor = sub.cursor === null ? seq : Math.max(sub.cursor, seq);
      }
      if (sub.prepared.stripSeq) delivered = { ...result, data: { ...result.data!, [key]: rest } };
    } else if (stream?.kind === 'snapshot') {
      const json = JSON.stringify(value);
      if (json === sub.lastSnapshot) return; // the same state again (a resubscription starts with it)
      sub.lastSnapshot = json;
    }
    safely(() => sub.sink.next(delivered));
  }

  function onComplete(sub: Sub): void {
    detach(sub);
    // A resumable stream never ends by itself: a plain `complete` means the server let go of it (a
    // shutting-down server completes its SSE streams). Resume from the cursor after a pause.
    if (sub.prepared.stream?.kind === 'resumable') return retryLater(sub);
    finish(sub);
  }

  function retryLater(sub: Sub, delayMs = backoffDelay(sub.retries, backoff)): void {
    sub.retries += 1;
    clearTimeout(sub.timer);
    sub.timer = setTimeout(() => {
      sub.timer = undefined;
      startSub(sub);
    }, delayMs);
  }

  function handleResync(sub: Sub, error: { message: string; extensions?: Record<string, unknown> }): void {
    const ext = error.extensions ?? {};
    sub.cursor = null;
    sub.anchored = false;
    sub.waiting = true;
    let restarted = false;
    const notify = (latest: number | null): void => {
      if (sub.done) return;
      const event: ResyncEvent = {
        field: sub.prepared.field,
        variables: sub.variables,
        reason: ext['reason'] === 'AHEAD' ? 'AHEAD' : 'NOT_KEPT',
        afterSeq: numberOr(ext['afterSeq'], null),
        latestSeq: latest,
        message: error.message,
        restart: () => {
          if (restarted || sub.done) return;
          restarted = true;
          sub.waiting = false;
          startSub(sub);
        },
      };
      if (sub.sink.resync) safely(() => sub.sink.resync!(event));
      if (options.onResync) safely(() => options.onResync!(event));
      if (resyncMode === 'auto') event.restart();
    };
    // Anchor first: the restarted subscription then delivers every event after the seq read now, so
    // an app that refetches when it hears of the resync misses nothing.
    const current = session;
    if (current && sub.prepared.anchorQuery) anchor(sub, current, notify);
    else notify(null);
  }

  function finish(sub: Sub, result?: Result): void {
    if (sub.done) return;
    end(sub);
    if (result) safely(() => sub.sink.next(result));
    if (sub.sink.complete) safely(() => sub.sink.complete!());
  }

  function end(sub: Sub): void {
    sub.done = true;
    detach(sub);
    clearTimeout(sub.timer);
    subs.delete(sub);
    if (subs.size === 0) {
      clearTimeout(lingerTimer);
      lingerTimer = quietTimer(closeIdle, lazyCloseMs);
    }
  }

  function closeIdle(): void {
    if (subs.size > 0) return;
    shutdown();
    if (!disposed) status({ state: 'idle' });
  }

  function shutdown(): void {
    generation += 1;
    connecting = false;
    for (const timer of [reconnectTimer, probeTimer, stableTimer, lingerTimer]) clearTimeout(timer);
    reconnectTimer = undefined;
    const current = session;
    session = undefined;
    current?.close();
  }

  function failAll(error: unknown): void {
    for (const sub of [...subs]) {
      end(sub);
      if (sub.sink.error) safely(() => sub.sink.error!(error));
    }
    shutdown();
  }

  function prepare(document: DocumentNode | string): PreparedSubscription {
    if (typeof document === 'string') {
      let found = preparedText.get(document);
      if (!found) preparedText.set(document, (found = prepareSubscription(document)));
      return found;
    }
    let found = prepared.get(document);
    if (!found) prepared.set(document, (found = prepareSubscription(document)));
    return found;
  }

  return {
    subscribe(document, variables, sink) {
      if (disposed) throw new Error('@ovation/client: the client was disposed');
      const p = prepare(document);
      const vars = { ...(variables as Record<string, unknown>) };
      const sub: Sub = {
        prepared: p,
        variables: vars,
        sink: sink as OvationSink<Record<string, unknown>>,
        cursor: p.initialCursor(vars),
        ordered: false,
        anchored: false,
        lastSnapshot: undefined,
        handle: undefined,
        timer: undefined,
        waiting: false,
        retries: 0,
        authRetries: 0,
        done: false,
      };
      subs.add(sub);
      clearTimeout(lingerTimer);
      if (session) startSub(sub);
      else if (!connecting && reconnectTimer === undefined) void connect();
      return () => {
        if (!sub.done) end(sub);
      };
    },
    get transport() {
      return session?.transport;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const sub of [...subs]) finish(sub);
      shutdown();
      status({ state: 'closed' });
    },
  };
}
