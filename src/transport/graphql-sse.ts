/**
 * graphql-sse on /graphql/stream (single-connection mode, and its distinct-connection GET/POST):
 * the protocol as graphql-sse-protocol.ts implements it, each operation run through Yoga's
 * `getEnveloped` (the same plugins and context as HTTP, Yoga's SSE and graphql-ws).
 *
 * Why not graphql-sse's own handler: it serialises every result once per subscriber (at 2,000
 * single-connection watchers of one tally, one JSON.stringify each per update), writes no `id:`
 * (so no resume), and its request errors were answered without the catalogue (a syntax error
 * became a 500 with a stack). Here shared results reach each stream through a direct sink
 * (shared-subscriptions.ts), serialised once; request errors (syntax, validation, a bad token or
 * Last-Event-ID, a mutation over GET) are masked like every other transport's (catalogue code,
 * `retryable`) and answered 400 (401/403 for UNAUTHENTICATED/FORBIDDEN, 405 for a mutation over
 * GET) before any stream starts.
 */
import type { ServerResponse } from 'node:http';
import {
  getOperationAST,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Context } from '../context.js';
import { AppError, badInput, ErrorCode } from '../errors.js';
import type { Viewer } from '../guards/auth.js';
import {
  createGraphqlSseHandler,
  type GraphqlSseDeps,
  type GraphQLParams,
  type OperationExtras,
  type Prepared,
  type Refusal,
} from './graphql-sse-protocol.js';

const STATUS: Partial<Record<string, number>> = { [ErrorCode.UNAUTHENTICATED]: 401, [ErrorCode.FORBIDDEN]: 403 };

export function useGraphQLSSE(
  options: Pick<
    GraphqlSseDeps,
    | 'maskError'
    | 'maxOperationsPerStream'
    | 'clientBufferBytes'
    | 'channels'
    | 'connections'
    | 'store'
    | 'relay'
    | 'instanceId'
    | 'onError'
  > & {
    endpoint?: string;
    /** The client's IP for a request as the context would compute it (trusting the proxy or not). */
    clientIp(request: Request, serverContext: Record<string, unknown> | undefined): string;
    /** A stream request's token (graphql-sse-protocol.ts, "Tokens"): the same authenticator as every operation's. */
    authenticate(request: Request): Promise<Viewer | null>;
  },
): Plugin {
  const { endpoint = '/graphql/stream', maskError } = options;
  const mask = (errors: readonly unknown[]): GraphQLError[] =>
    errors.map((e) => maskError(e, 'Unexpected error.') as GraphQLError);
  const refuse = (errors: readonly unknown[]): Refusal => {
    const refused = mask(errors);
    const code = refused[0]?.extensions?.['code'];
    // Yoga's own request checks say which status they mean (405 + Allow for a mutation over GET).
    const http = refused[0]?.extensions?.http as { status?: unknown; headers?: Record<string, string> } | undefined;
    const status =
      typeof http?.status === 'number' ? http.status : ((typeof code === 'string' ? STATUS[code] : undefined) ?? 400);
    return { refused, status, headers: http?.headers };
  };
  // Request errors graphql-js returns as a result (variable coercion) carry no catalogue code yet:
  // what useErrorCatalogue does for HTTP results (maskError keeps codes already given).
  const normalize = (result: ExecutionResult): ExecutionResult =>
    result.errors?.length ? { ...result, errors: mask(result.errors) } : result;

  let handle: ReturnType<typeof createGraphqlSseHandler> | undefined;
  /** Node's req/res for each request, for the operation's context (as Yoga gives them on /graphql). */
  const serverContexts = new WeakMap<Request, Record<string, unknown>>();

  return {
    onYogaInit({ yoga }) {
      handle = createGraphqlSseHandler({
        maskError,
        maxOperationsPerStream: options.maxOperationsPerStream,
        clientBufferBytes: options.clientBufferBytes,
        channels: options.channels,
        connections: options.connections,
        store: options.store,
        relay: options.relay,
        instanceId: options.instanceId,
        clientIp: (request) => options.clientIp(request, serverContexts.get(request)),
        authenticate: options.authenticate,
        onError: options.onError,
        Response: yoga.fetchAPI.Response,
        Request: yoga.fetchAPI.Request,
        async prepare(request: Request, params: GraphQLParams, extras: OperationExtras): Promise<Prepared | Refusal> {
          const enveloped = yoga.getEnveloped({ ...serverContexts.get(request), request, params, ...extras });
          let document: DocumentNode;
          try {
            document = enveloped.parse(params.query) as DocumentNode;
          } catch (error) {
            return refuse([error]);
          }
          const errors = enveloped.validate(enveloped.schema, document) as readonly GraphQLError[];
          if (errors.length > 0) return refuse(errors);
          // Yoga's parse already refused a mutation over GET (405) and a document without a clear operation.
          const operation = getOperationAST(document, params.operationName);
          if (!operation)
            return refuse([badInput('operationName', 'operationName must name one of the document’s operations')]);
          let contextValue: unknown;
          try {
            contextValue = await enveloped.contextFactory();
          } catch (error) {
            if (!(error instanceof AppError) && !(error instanceof Error && 'extensions' in error)) throw error;
            return refuse([error]);
          }
          const args = {
            schema: enveloped.schema as GraphQLSchema,
            document,
            contextValue,
            variableValues: params.variables,
            operationName: params.operationName,
          };
          const run = operation.operation === 'subscription' ? enveloped.subscribe : enveloped.execute;
          return {
            viewer: (contextValue as Partial<Context>).viewer ?? null,
            async run() {
              const result = (await run(args)) as ExecutionResult | AsyncIterable<ExecutionResult>;
              return isAsyncIterable(result) ? result : normalize(result);
            },
          };
        },
      });
    },
    onRequest({ request, url, endResponse, serverContext }) {
      if (!handle || !url.pathname.endsWith(endpoint)) return;
      serverContexts.set(request, serverContext);
      return handle(request, url, (serverContext as { res?: ServerResponse }).res).then(endResponse);
    },
  };
}
