/**
 * The one Yoga instance: HTTP queries and mutations, GraphiQL (graphiql.ts: assets served from
 * this process, no CDN, compressed and cached), SSE in Yoga's distinct-connection mode on /graphql, and the graphql-sse
 * single-connection mode on /graphql/stream. graphql-ws (ws.ts) runs through the same
 * `getEnveloped`, so every transport shares these plugins and this context.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { AppError } from '../errors.js';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Context, Services } from '../context.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Authenticator, Viewer } from '../guards/auth.js';
import type { TransportMarker } from '../guards/streams.js';
import type { Logger } from '../infra/logger.js';
import type { ConnectionRegistry } from '../realtime/connections.js';
import { parseLastEventId, type CursorContext } from '../realtime/cursors.js';
import type { DirectSinkContext } from '../realtime/shared-subscriptions.js';
import { useErrorCatalogue } from '../schema/errors.js';
import { useRequestBodyLimit, useRequestParamErrors } from '../guards/limits.js';
import { useGraphiQL } from './graphiql.js';
import { useGraphQLSSE } from './graphql-sse.js';
import type { GraphqlSseRelay, GraphqlSseStore } from './graphql-sse.store.js';
import { useSseTransport, type SseChannels } from './sse.js';

export interface ServerContext {
  req: IncomingMessage;
  res: ServerResponse;
}

/** Set by the graphql-ws adapter, which authenticates (and guards) once per connection. */
export interface PreauthenticatedContext extends TransportMarker, DirectSinkContext, CursorContext {
  viewer?: Viewer | null;
  clientIp?: string;
  deviceId?: string | null;
}

/**
 * The client's IP. With TRUST_PROXY, the address our one trusted proxy saw: the last
 * X-Forwarded-For entry (the one that proxy appended). Earlier entries come from the client itself
 * (nginx's $proxy_add_x_forwarded_for keeps whatever it sent), so believing the first would let
 * anyone pick their own IP and slip per-IP limits.
 */
export function clientIpOf(
  peer: string | undefined,
  forwardedFor: string | null | undefined,
  trustProxy: boolean,
): string {
  const forwarded = trustProxy ? forwardedFor?.split(',').at(-1)?.trim() : undefined;
  return forwarded || peer?.replace(/^::ffff:/, '') || 'unknown';
}

const DEVICE_ID_MAX = 200;
export const deviceIdOf = (raw: unknown): string | null =>
  typeof raw === 'string' && raw.length > 0 && raw.length <= DEVICE_ID_MAX ? raw : null;

export type Yoga = YogaServerInstance<ServerContext & PreauthenticatedContext, Context>;

export const GRAPHQL_PATH = '/graphql';

/**
 * Yoga logs every error its maskError rewrites, and ours rewrites all of them (to add the
 * catalogue's extensions). Expected failures (the catalogue, bad requests) are the client's
 * business: debug level. Unexpected ones are already logged by maskError's onUnexpected.
 */
function quietExpectedErrors(logger: Logger): Logger {
  return {
    ...logger,
    error(message, fields) {
      const logged: unknown = message; // Yoga passes Error objects here, not only strings
      if (logged instanceof AppError || logged instanceof GraphQLError) {
        const original = logged instanceof GraphQLError ? logged.originalError : logged;
        const expected = original === undefined || original instanceof AppError || original instanceof GraphQLError;
        if (expected) logger.debug(logged.message, fields);
        return;
      }
      logger.error(message, fields);
    },
  };
}
export const GRAPHQL_SSE_PATH = '/graphql/stream';

export function createYogaServer(deps: {
  /** This process's instance id: `GET /health` answers it in `x-yoga-id` (which worker or instance served). */
  id?: string;
  schema: GraphQLSchema;
  prisma: PrismaClient;
  services: Services;
  authenticator: Authenticator;
  logger: Logger;
  exposeInternals: boolean;
  trustProxy: boolean;
  maskError: (error: unknown, message: string) => Error;
  /** /ready: throws (503 with the message) when a dependency does not answer. */
  readiness: () => Promise<void>;
  /** Runs last, so it wraps the final subscribe function (see shared-subscriptions.ts). */
  extraPlugins?: Plugin[];
  /** Every SSE response of this server, both modes: shutdown ends them without `complete` (sse.ts). */
  sseChannels: SseChannels;
  /** Where both SSE transports report their streams (src/realtime/connections.ts). */
  connections: ConnectionRegistry;
  /** graphql-sse's reservations and where each stream is held, and the relay between instances (graphql-sse.store.ts). */
  graphqlSse: { store: GraphqlSseStore; relay?: GraphqlSseRelay };
  /** MAX_BATCH_SIZE, MAX_REQUEST_BODY_BYTES, MAX_SUBSCRIPTIONS_PER_CONNECTION and SUBSCRIPTION_CLIENT_BUFFER_BYTES (README "Limits", "Backpressure"). */
  limits?: {
    maxBatchSize: number;
    maxRequestBodyBytes: number;
    maxSubscriptionsPerConnection?: number;
    clientBufferBytes?: number;
  };
}): Yoga {
  const { schema, prisma, services, authenticator, logger, maskError } = deps;

  return createYoga<ServerContext & PreauthenticatedContext, Context>({
    ...(deps.id === undefined ? {} : { id: deps.id }),
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    healthCheckEndpoint: '/health',
    landingPage: false,
    logging: quietExpectedErrors(logger),
    maskedErrors: { maskError, isDev: deps.exposeInternals },
    // useGraphiQL (graphiql.ts) serves it: a small page, compressed and cacheable assets.
    graphiql: false,
    batching: { limit: deps.limits?.maxBatchSize ?? 10 }, // more operations in one request: 413
    // useRequestBodyLimit (below) enforces the limit on every path, bodies without a
    // Content-Length included; Yoga's own check would pipe each body through a TransformStream
    // (a DomException and a stream pipeline per request: ~6% of castVote's CPU).
    maxRequestBodySize: false,
    context: async (initial): Promise<Context> => {
      const viewer =
        initial.viewer !== undefined
          ? initial.viewer
          : await authenticator.authenticate(initial.request.headers.get('authorization'));
      if (viewer) await services.users.ensureUser(viewer);
      const clientIp =
        initial.clientIp ??
        clientIpOf(initial.req?.socket?.remoteAddress, initial.request.headers.get('x-forwarded-for'), deps.trustProxy);
      const deviceId =
        initial.deviceId !== undefined ? initial.deviceId : deviceIdOf(initial.request.headers.get('x-device-id'));
      // SSE: a browser's EventSource reconnects with the id of the last event it got (cursors.ts).
      // graphql-ws operations have no request of their own; graphql-sse's single-connection
      // operations get theirs from their stream's cursor map (graphql-sse-protocol.ts), even none.
      const lastEventSeq =
        'lastEventSeq' in initial
          ? initial.lastEventSeq
          : parseLastEventId(initial.request?.headers.get('last-event-id'));
      return { ...initial, viewer: viewer ?? null, clientIp, deviceId, lastEventSeq, prisma, services };
    },
    plugins: [
      // The IDE's page and assets, and GET /: before anything reads a body or checks a method.
      useGraphiQL({
        graphqlEndpoint: GRAPHQL_PATH,
        title: 'Ovation GraphiQL',
        options: { subscriptionsProtocol: 'WS' },
      }),
      useErrorCatalogue(maskError),
      // Every path with a body (/graphql, graphql-sse's /graphql/stream): 413 before a handler reads it.
      useRequestBodyLimit({ maxBytes: deps.limits?.maxRequestBodyBytes ?? 1_048_576 }),
      useRequestParamErrors(), // ?variables=oops is the client's error (400), not an internal one
      // graphql-sse's protocol over this pipeline: request errors answered 4xx, masked; ids for resume (graphql-sse.ts)
      useGraphQLSSE({
        endpoint: GRAPHQL_SSE_PATH,
        maskError,
        maxOperationsPerStream: deps.limits?.maxSubscriptionsPerConnection ?? 100,
        clientBufferBytes: deps.limits?.clientBufferBytes ?? 1_048_576,
        channels: deps.sseChannels,
        connections: deps.connections,
        ...deps.graphqlSse,
        instanceId: deps.id ?? 'local',
        clientIp: (request, serverContext) =>
          clientIpOf(
            (serverContext as Partial<ServerContext> | undefined)?.req?.socket?.remoteAddress,
            request.headers.get('x-forwarded-for'),
            deps.trustProxy,
          ),
        onError: (message, details) => logger.error(message, details),
        authenticate: (request) => authenticator.authenticate(request.headers.get('authorization')),
      }),
      useSseTransport({
        endpoint: GRAPHQL_PATH,
        clientBufferBytes: deps.limits?.clientBufferBytes ?? 1_048_576,
        channels: deps.sseChannels,
        connections: deps.connections,
      }), // Yoga's distinct-connection SSE, shared results written once (sse.ts)
      useReady({ endpoint: '/ready', check: deps.readiness }),
      ...(deps.extraPlugins ?? []),
    ],
  });
}

/**
 * Yoga's useReadinessCheck without its URLPattern: that one runs a pattern match on every request
 * that is not /ready (~2% of castVote's CPU); an exact path comparison is the same test.
 */
function useReady(opts: { endpoint: string; check: () => Promise<void> }): Plugin {
  return {
    onRequest({ url, endResponse, fetchAPI }) {
      if (url.pathname !== opts.endpoint) return;
      return opts.check().then(
        () => endResponse(new fetchAPI.Response(null, { status: 200 })),
        (error: unknown) =>
          endResponse(
            error instanceof Error
              ? new fetchAPI.Response(error.message, {
                  status: 503,
                  headers: { 'content-type': 'text/plain; charset=utf-8' },
                })
              : new fetchAPI.Response(null, { status: 503 }),
          ),
      );
    },
  };
}
