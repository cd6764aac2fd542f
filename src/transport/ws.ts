/**
 * graphql-ws (subprotocol graphql-transport-ws) on the HTTP server's /graphql path. A thin
 * adapter: the connection is authenticated once from connectionParams.authorization, and every
 * operation runs through Yoga's `getEnveloped`, the same pipeline and context as HTTP and SSE.
 */
import type { Server } from 'node:http';
import { type GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { AppError } from '../errors.js';
import type { Authenticator, Viewer } from '../guards/auth.js';
import type { Logger } from '../infra/logger.js';
import { GRAPHQL_PATH, clientIpOf, deviceIdOf, type Yoga } from './http.js';

const headerOf = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

type ConnectionExtra = {
  viewer?: Viewer | null;
};

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

export interface WsTransport {
  /** Closes every connection with 1001 (Going Away) and stops accepting new ones. */
  close(): Promise<void>;
  connections(): number;
}

export function attachGraphqlWs(deps: {
  server: Server;
  yoga: Yoga;
  authenticator: Authenticator;
  logger: Logger;
  keepAliveMs: number;
  isProd: boolean;
  trustProxy: boolean;
  /** Maps GraphQL request errors (syntax, validation) like the HTTP path does. */
  maskError: (error: unknown, message: string) => Error;
}): WsTransport {
  const { yoga, authenticator, logger } = deps;
  const wsServer = new WebSocketServer({ server: deps.server, path: GRAPHQL_PATH });

  const disposable = useServer<Record<string, unknown> | undefined, ConnectionExtra>(
    {
      isProd: deps.isProd,
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onConnect: async (ctx) => {
        try {
          ctx.extra.viewer = await authenticator.authenticate(ctx.connectionParams?.['authorization']);
          return true;
        } catch (error) {
          if (error instanceof AppError) return false; // graphql-ws closes with 4403 Forbidden
          throw error;
        }
      },
      onSubscribe: async (ctx, _id, params) => {
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          viewer: ctx.extra.viewer ?? null,
          clientIp: clientIpOf(ctx.extra.request.socket.remoteAddress, headerOf(ctx.extra.request.headers['x-forwarded-for']), deps.trustProxy),
          deviceId: deviceIdOf(ctx.connectionParams?.['deviceId']),
        });
        const toErrors = (errors: readonly unknown[]): GraphQLError[] =>
          errors.map((e) => deps.maskError(e, 'Unexpected error.') as GraphQLError);
        let document;
        try {
          document = enveloped.parse(params.query);
        } catch (error) {
          return toErrors([error]);
        }
        const errors = enveloped.validate(enveloped.schema, document);
        if (errors.length > 0) return toErrors(errors);
        return {
          schema: enveloped.schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
      },
    },
    wsServer,
    deps.keepAliveMs,
  );

  wsServer.on('error', (error) => logger.error('websocket server error', { error }));

  return {
    async close() {
      await disposable.dispose();
    },
    connections: () => wsServer.clients.size,
  };
}

export { CloseCode };
