/**
 * Real subscription clients for end-to-end tests, one per transport, behind one small interface:
 * graphql-ws, graphql-sse in single-connection mode, and Yoga's distinct-connection SSE read
 * with plain fetch (what `curl -N` or a mobile EventSource sees).
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
  waitFor(predicate: (result: FormattedExecutionResult<T>) => boolean, timeoutMs?: number): Promise<FormattedExecutionResult<T>>;
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
      const message = error instanceof Error ? error.message : JSON.stringify(error, (_k, v: unknown) => (typeof v === 'object' && v !== null && 'code' in v && 'reason' in v ? { code: (v as { code: unknown }).code, reason: (v as { reason: unknown }).reason } : v));
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
  return feedFrom(distinctSse<T>(`${baseUrl}/graphql`, query, variables, token, abort.signal), async () => abort.abort());
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
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = frame
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (event === 'complete') return;
        if (data) yield JSON.parse(data) as FormattedExecutionResult<T>;
      }
    }
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
}
