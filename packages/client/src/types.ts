import type { GraphQLFormattedError } from 'graphql';

/** graphql-ws, graphql-sse's single connection (`/graphql/stream`), polling queries over HTTP. */
export type TransportName = 'ws' | 'sse' | 'poll';

export interface Result<TData = Record<string, unknown>> {
  data?: TData | null;
  errors?: readonly GraphQLFormattedError[];
  extensions?: Record<string, unknown>;
}

/**
 * The server no longer keeps the events after this subscription's cursor (NOT_KEPT), or the
 * cursor is ahead of the stream (AHEAD): refetch the state the stream describes. The kit has
 * already read the stream's latest seq (`latestSeq`); the restarted subscription delivers every
 * event after it, so a refetch that starts now misses nothing (an event may arrive both in the
 * refetched state and as an event).
 */
export interface ResyncEvent {
  field: string;
  /** The app's variables of the subscription. */
  variables: Record<string, unknown>;
  reason: 'NOT_KEPT' | 'AHEAD';
  /** The cursor the server refused. */
  afterSeq: number | null;
  /** The seq the restarted subscription continues after (null: the stream has no anchor query). */
  latestSeq: number | null;
  message: string;
  /** Restarts the subscription (`resync: 'manual'`; with 'auto' the kit already did). */
  restart(): void;
}

export interface OvationSink<TData = Record<string, unknown>> {
  /** A result: data, or the errors that ended the subscription (then `complete` follows). */
  next(result: Result<TData>): void;
  /** The kit gave up (a fatal authentication failure, or the client was disposed with an error). */
  error?(error: unknown): void;
  complete?(): void;
  /** RESYNC_REQUIRED for this subscription (also reported to the client's `onResync`). */
  resync?(event: ResyncEvent): void;
  /**
   * The subscription was (re)started on a connection, from `cursor` (resumable fields: every event
   * after it will be delivered; null: from now). A live indicator per subscription.
   */
  started?(info: { transport: TransportName; cursor: number | null }): void;
}

export interface StatusEvent {
  /**
   * connecting: opening a connection; live: connected, subscriptions (re)started; reconnecting:
   * waiting before the next attempt; idle: no subscription, no connection; closed: disposed.
   */
  state: 'connecting' | 'live' | 'reconnecting' | 'idle' | 'closed';
  transport?: TransportName;
  url?: string;
  /** Failed attempts since the last stable connection. */
  attempt?: number;
  /** reconnecting: in how many ms. */
  delayMs?: number;
  /** What ended the previous connection or attempt. */
  error?: unknown;
}

/** A WebSocket constructor (the global one in browsers and React Native, `ws` in Node < 22). */
export type WebSocketConstructor = unknown;

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;
