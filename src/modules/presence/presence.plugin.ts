/**
 * Presence's hooks in the shared Yoga pipeline (HTTP, SSE and graphql-ws all run through it):
 *
 * - Activity: every operation (onExecute, onSubscribe) of an authenticated viewer, on any
 *   transport, counts for AWAY.
 * - SSE connections. An authenticated SSE stream is a live connection of its user from the
 *   response's start until the HTTP response closes (the client went away, the stream completed,
 *   the server shut down): Node's `res` 'close' is the one signal every way of ending shares, so
 *   it is what ends the entry (not the subscription iterator, which a single-connection stream
 *   does not have, and which can end without the stream ending). Which responses count:
 *   - Yoga's distinct-connection mode on /graphql: a `text/event-stream` response to a
 *     *subscription* of an authenticated viewer that started (a query answered over SSE, or a
 *     refused subscription, ends at once and is not a connection);
 *   - graphql-sse on /graphql/stream: a `text/event-stream` response to a request that carries a
 *     valid `Authorization` (the graphql-sse client sends its headers on the stream request too).
 *   On /graphql the 'close' listener is attached when the request arrives, before anything async.
 *   graphql-sse answers /graphql/stream in its own onRequest hook, which ends the hook chain, so
 *   there the listener is attached in onResponse, after checking that the response is not
 *   already gone. Either way a client that leaves early never leaves an entry behind.
 */
import type { ServerResponse } from 'node:http';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Context } from '../../context.js';
import type { Authenticator, Viewer } from '../../guards/auth.js';
import type { ServerContext } from '../../transport/http.js';
import type { ConnectionLease, PresenceTracker } from './presence.tracker.js';

interface SseResponse {
  closed: boolean;
  /** The subscription's viewer (distinct-connection mode). */
  viewer?: Viewer;
  lease?: ConnectionLease;
}

const isEventStream = (value: string | null): boolean => value?.toLowerCase().includes('text/event-stream') ?? false;
const isGone = (res: ServerResponse): boolean =>
  res.closed || res.destroyed || res.socket === null || res.socket.destroyed;

export function usePresence(deps: {
  tracker: PresenceTracker;
  authenticator: Authenticator;
  /** graphql-sse's endpoint, where the stream request is not a GraphQL operation itself. */
  graphqlSsePath: string;
  onError: (message: string, details: Record<string, unknown>) => void;
}): Plugin {
  const { tracker, authenticator } = deps;
  const responses = new WeakMap<ServerResponse, SseResponse>();

  const viewerOf = (context: unknown): Viewer | null => (context as Partial<Context>).viewer ?? null;
  const resOf = (context: unknown): ServerResponse | undefined => (context as Partial<ServerContext> | undefined)?.res;

  function watch(res: ServerResponse): SseResponse {
    let sse = responses.get(res);
    if (sse) return sse;
    sse = { closed: isGone(res) };
    responses.set(res, sse);
    const watched = sse;
    if (!watched.closed) {
      res.once('close', () => {
        watched.closed = true;
        watched.lease?.close();
      });
    }
    return watched;
  }

  return {
    onRequest({ request, serverContext }) {
      const res = resOf(serverContext);
      if (res && isEventStream(request.headers.get('accept'))) watch(res);
    },
    onExecute({ args }) {
      const viewer = viewerOf(args.contextValue);
      if (viewer) tracker.activity(viewer.id);
    },
    onSubscribe({ args }) {
      const viewer = viewerOf(args.contextValue);
      if (!viewer) return;
      tracker.activity(viewer.id);
      const res = resOf(args.contextValue);
      const sse = res && responses.get(res);
      if (!sse) return;
      return {
        onSubscribeResult({ result }) {
          // A refused subscription (an error result) answers over SSE too, and ends at once.
          if (isAsyncIterable(result)) sse.viewer = viewer;
        },
      };
    },
    async onResponse({ request, response, serverContext }) {
      const res = resOf(serverContext);
      if (!res || response.status !== 200 || !isEventStream(response.headers.get('content-type'))) return;
      try {
        const graphqlSse = new URL(request.url).pathname === deps.graphqlSsePath;
        const sse = graphqlSse ? watch(res) : responses.get(res);
        if (!sse || sse.closed) return;
        let viewer = sse.viewer ?? null;
        if (!viewer && graphqlSse) {
          viewer = await authenticator.authenticate(request.headers.get('authorization')).catch(() => null);
        }
        if (!viewer || sse.closed) return;
        sse.lease = tracker.open(viewer.id, 'sse');
        // Counted before the first event is written; never rejects, bounded wait.
        await sse.lease.ready;
      } catch (error) {
        // An exception here would reach Node's HTTP server: presence must never break a stream.
        deps.onError('presence: tracking an SSE stream failed', { error });
      }
    },
  };
}
