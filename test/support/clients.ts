/**
 * Real subscription clients for end-to-end tests, one per transport, behind one small interface:
 * graphql-ws, graphql-sse in single-connection mode, and Yoga's distinct-connection SSE read
 * with plain fetch (what `curl -N` or a mobile EventSource sees). For resuming: an
 * EventSource-like client (reconnects to the same URL with Last-Event-ID) and a subscriber that
 * reconnects with afterSeq = the last seq it received.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type FormattedExecutionResult } from 'graphql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';

export interface Feed<T> {
  /** Every result received so far. */
  readonly results: FormattedExecutionResult<T>[];
  /** Resolves with the first received result (old or new) that matches; rejects after timeoutMs. */
  waitFor(
    predicate: (result: FormattedExecutionResult<T>) => boolean,
    timeoutMs?: number,
  ): Promise<FormattedExecutionResult<T>>;
  /** Resolves when the server ends the stream (complete or error). */
  readonly ended: Promise<void>;
  close(): Promise<void>;
}

export type Transport = 'graphql-ws' | 'graphql-sse' | 'sse';

function feedFrom<T>(iterable: AsyncIterable<FormattedExecutionResult<T>>, close: () => Promise<void>): Feed<T> {
  const results: FormattedExecutionResult<T>[] = [];
  const waiters = new Set<() => void>();
  const ended = (async () => {
    try {
      for await (const result of iterable) {
        results.push(result);
        for (const wake of waiters) wake();
      }
    } catch (error) {
      // graphql-ws rejects with close events and error arrays, not Errors: keep their details visible.
      const message =
        error instanceof Error
          ? error.message
          : JSON.stringify(error, (_k, v: unknown) =>
              typeof v === 'object' && v !== null && 'code' in v && 'reason' in v
                ? { code: (v as { code: unknown }).code, reason: (v as { reason: unknown }).reason }
                : v,
            );
      results.push({ errors: [{ message }] });
    } finally {
      for (const wake of waiters) wake();
    }
  })();
  let done = false;
  void ended.then(() => (done = true));
  return {
    results,
    ended,
    // A client still connecting can keep close() waiting: never let that hide a test's real failure.
    close: () => Promise.race([close(), new Promise<void>((resolve) => setTimeout(resolve, 3_000).unref())]),
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = results.find(predicate);
          if (found) {
            cleanup();
            resolve(found);
            return true;
          }
          if (done) {
            cleanup();
            reject(new Error(`stream ended without a matching result; got ${JSON.stringify(results)}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching result within ${timeoutMs} ms; got ${JSON.stringify(results.slice(-3))}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        const wake = (): void => void check();
        if (!check()) waiters.add(wake);
      });
    },
  };
}

/**
 * "Nothing more arrives" without a fixed wait: once everything under test has arrived, `publish`
 * puts a sentinel on the same topic, and this resolves when it arrives, with every result before
 * it. A topic delivers in order, so whatever else was on its way (a duplicate, one too many) is
 * among those results by then, and the sentinel is the very next result after them.
 */
export async function untilSentinel<T>(
  feed: Feed<T>,
  publish: () => Promise<unknown>,
  isSentinel: (result: FormattedExecutionResult<T>) => boolean,
  timeoutMs?: number,
): Promise<FormattedExecutionResult<T>[]> {
  await publish();
  await feed.waitFor(isSentinel, timeoutMs);
  const at = feed.results.findIndex(isSentinel);
  return feed.results.slice(0, at);
}

export function wsClient(url: string, token?: string): WsClient {
  return createWsClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

export function subscribe<T, V extends Record<string, unknown>>(
  transport: Transport,
  baseUrl: string,
  document: TypedDocumentNode<T, V>,
  variables: V,
  token?: string,
): Feed<T> {
  const query = print(document);
  if (transport === 'graphql-ws') {
    const client = wsClient(`${baseUrl.replace(/^http/, 'ws')}/graphql`, token);
    const iterator = client.iterate<T>({ query, variables });
    return feedFrom(iterator as AsyncIterable<FormattedExecutionResult<T>>, async () => {
      await iterator.return?.();
      await client.dispose();
    });
  }
  if (transport === 'graphql-sse') {
    const client = createSseClient({
      url: `${baseUrl}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const iterator = client.iterate<T>({ query, variables });
    return feedFrom(iterator as AsyncIterable<FormattedExecutionResult<T>>, async () => {
      await iterator.return?.();
      client.dispose();
    });
  }
  const abort = new AbortController();
  return feedFrom(distinctSse<T>(`${baseUrl}/graphql`, query, variables, token, abort.signal), async () =>
    abort.abort(),
  );
}

/** One SSE message as a client's parser sees it (the fields this server writes). */
export interface SseMessage {
  event: string | undefined;
  id: string | undefined;
  data: string;
}

/** Parses a text/event-stream body into messages (comments and empty messages skipped). */
export async function* sseMessages(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let boundary: number;
    while ((boundary = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const field = (name: string) => new RegExp(`^${name}: ?(.*)$`, 'm').exec(frame)?.[1];
      const data = frame
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      const event = field('event');
      if (event === undefined && !data) continue;
      yield { event, id: field('id'), data };
    }
  }
}

/** Yoga's distinct-connection SSE: one POST per operation, `event: next` frames, then `complete`. */
export async function* distinctSse<T>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<FormattedExecutionResult<T>> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      signal,
      headers: {
        accept: 'text/event-stream',
        'content-type': 'application/json',
        ...(token && { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
  if (!response.body) throw new Error(`no body (status ${response.status})`);
  try {
    for await (const message of sseMessages(response.body as unknown as AsyncIterable<Uint8Array>)) {
      if (message.event === 'complete') return;
      if (message.data) yield JSON.parse(message.data) as FormattedExecutionResult<T>;
    }
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
}

export interface EventSourceFeed<T> extends Feed<T> {
  /** The `id:` of each result, in the order of `results`. */
  readonly ids: (string | undefined)[];
  /** Every request made, with the Last-Event-ID it sent and how it ended. */
  readonly requests: { lastEventId: string | undefined; status?: number; ended?: string }[];
  /** Resolves once the first request's response arrived (the subscription is live on the server). */
  readonly opened: Promise<void>;
}

const networkError = (error: unknown): string =>
  `network error: ${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}`;

/**
 * What a browser's EventSource does, with fetch (so it can carry a token, as EventSource
 * polyfills do): GET the URL with `Accept: text/event-stream`; remember the last `id:` seen; when
 * the connection fails or ends, wait `reconnectMs` and GET the same URL again with that id as
 * `Last-Event-ID` (never anything in the query: the URL is fixed). A response that is not a 200
 * event stream ends it for good, as it does EventSource. `event: complete` is Yoga's end of the
 * operation: the client stops (a page would call close()). At most `maxRequests` requests.
 */
export function eventSource<T, V extends Record<string, unknown>>(
  baseUrl: string,
  document: TypedDocumentNode<T, V>,
  variables: V,
  opts: {
    token?: string;
    /** What the first request sends as Last-Event-ID (a page restoring a stored id); later ones send the last id seen. */
    lastEventId?: string;
    reconnectMs?: number;
    maxRequests?: number;
  } = {},
): EventSourceFeed<T> {
  const url = `${baseUrl}/graphql?${new URLSearchParams({ query: print(document), variables: JSON.stringify(variables) })}`;
  const { reconnectMs = 100, maxRequests = 20 } = opts;
  const abort = new AbortController();
  const ids: (string | undefined)[] = [];
  const requests: EventSourceFeed<T>['requests'] = [];
  let markOpen!: () => void;
  const opened = new Promise<void>((resolve) => (markOpen = resolve));
  let lastEventId = opts.lastEventId;

  async function* run(): AsyncGenerator<FormattedExecutionResult<T>> {
    while (!abort.signal.aborted) {
      if (requests.length >= maxRequests)
        throw new Error(`gave up after ${maxRequests} requests: ${JSON.stringify(requests)}`);
      const request: EventSourceFeed<T>['requests'][number] = { lastEventId };
      requests.push(request);
      let response: Response | undefined;
      try {
        response = await fetch(url, {
          signal: abort.signal,
          headers: {
            accept: 'text/event-stream',
            'cache-control': 'no-cache',
            ...(opts.token && { authorization: `Bearer ${opts.token}` }),
            ...(lastEventId !== undefined && { 'last-event-id': lastEventId }),
          },
        });
      } catch (error) {
        if (abort.signal.aborted) return;
        request.ended = networkError(error);
      }
      if (response) {
        request.status = response.status;
        if (
          response.status !== 200 ||
          !response.headers.get('content-type')?.startsWith('text/event-stream') ||
          !response.body
        ) {
          throw new Error(`EventSource failed for good: ${response.status} ${await response.text()}`);
        }
        markOpen();
        try {
          for await (const message of sseMessages(response.body as unknown as AsyncIterable<Uint8Array>)) {
            if (message.id !== undefined) lastEventId = message.id;
            if (message.event === 'complete') {
              request.ended = 'complete';
              return;
            }
            if (message.data) {
              ids.push(message.id);
              yield JSON.parse(message.data) as FormattedExecutionResult<T>;
            }
          }
          request.ended = 'end of stream';
        } catch (error) {
          if (abort.signal.aborted) return;
          request.ended = networkError(error);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, reconnectMs));
    }
  }

  const feed = feedFrom(run(), async () => abort.abort());
  return Object.assign(feed, { ids, requests, opened });
}

/**
 * A subscriber that keeps its place across connections, as a client library does: the first
 * connection subscribes with afterSeq = `from` (0: every event of the topic), each later one with
 * afterSeq = the last seq it received, on whichever instance it is pointed at.
 */
export interface ResumingSubscriber<I extends { seq: number }> {
  /** The items of every connection, in arrival order. */
  items(): I[];
  /** The last seq received (`from` before any). */
  lastSeq(): number;
  /** The connection in use. */
  readonly feed: Feed<Record<string, I>>;
  readonly connections: number;
  /** Opens a new connection to `baseUrl` (the previous one must have ended or been closed). */
  connect(baseUrl: string): Feed<Record<string, I>>;
  /** Errors the server sent (extensions.code), over every connection; transport failures excluded. */
  serverErrors(): unknown[];
  waitForSeq(seq: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function resumingSubscriber<I extends { seq: number }>(
  transport: Transport,
  document: TypedDocumentNode<Record<string, unknown>, Record<string, unknown>>,
  field: string,
  variables: Record<string, unknown>,
  opts: { token?: string; from?: number } = {},
): ResumingSubscriber<I> {
  const feeds: Feed<Record<string, I>>[] = [];
  const items = (): I[] =>
    feeds.flatMap((feed) => feed.results.flatMap((r) => (r.data?.[field] ? [r.data[field]] : [])));
  const lastSeq = (): number => items().at(-1)?.seq ?? opts.from ?? 0;
  const current = (): Feed<Record<string, I>> => {
    const feed = feeds.at(-1);
    if (!feed) throw new Error('not connected yet');
    return feed;
  };
  return {
    items,
    lastSeq,
    get feed() {
      return current();
    },
    get connections() {
      return feeds.length;
    },
    connect(baseUrl) {
      const feed = subscribe(transport, baseUrl, document, { ...variables, afterSeq: lastSeq() }, opts.token) as Feed<
        Record<string, I>
      >;
      feeds.push(feed);
      return feed;
    },
    serverErrors: () =>
      feeds.flatMap((feed) =>
        feed.results.flatMap((r) => (r.errors ?? []).filter((e) => e.extensions?.['code'] !== undefined)),
      ),
    async waitForSeq(seq, timeoutMs) {
      await current().waitFor(() => lastSeq() >= seq, timeoutMs);
    },
    close: () => current().close(),
  };
}
