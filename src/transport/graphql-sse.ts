/**
 * graphql-sse (single-connection mode, and its distinct-connection GET/POST) on /graphql/stream:
 * `@graphql-yoga/plugin-graphql-sse`'s plugin, with its request errors answered as the client's.
 *
 * The stock plugin calls `enveloped.parse()` and `contextFactory()` without catching: a syntax
 * error (`GET /graphql/stream?query={`), a document over the protocol limits or a bad token
 * rejects graphql-sse's handler, which Yoga answers with a 500 carrying the stack. And it returns
 * validation errors as `{ errors }` without `data`, which graphql-sse takes for execution
 * arguments ("Unable to detect operation AST"). Here parse, validation and context errors are
 * masked like every other transport's (catalogue code, `retryable`) and answered 400 (401/403 for
 * UNAUTHENTICATED/FORBIDDEN) before any stream starts.
 */
import { getOperationAST, type DocumentNode, type GraphQLError } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/fetch';
import type { Plugin } from 'graphql-yoga';
import { AppError, ErrorCode } from '../errors.js';

type MaskError = (error: unknown, message: string) => Error;

const STATUS: Partial<Record<string, number>> = { [ErrorCode.UNAUTHENTICATED]: 401, [ErrorCode.FORBIDDEN]: 403 };

function refusal(errors: readonly GraphQLError[]): never {
  const code = errors[0]?.extensions?.['code'];
  const json = errors.map((e) => {
    const { http: _http, ...extensions } = e.extensions ?? {}; // Yoga's status hint, not for clients
    return { ...e.toJSON(), extensions };
  });
  // graphql-sse's Response tuple: [body, init]
  return [
    JSON.stringify({ errors: json }),
    { status: (typeof code === 'string' && STATUS[code]) || 400, headers: { 'content-type': 'application/json; charset=utf-8' } },
  ] as never;
}

export function useGraphQLSSE(options: { endpoint?: string; maskError: MaskError }): Plugin {
  const { endpoint = '/graphql/stream', maskError } = options;
  const ctxForReq = new WeakMap<Request, Record<string, unknown>>();
  let handler: ((request: Request) => Promise<Response>) | undefined;
  const mask = (errors: readonly unknown[]): GraphQLError[] => errors.map((e) => maskError(e, 'Unexpected error.') as GraphQLError);

  return {
    onYogaInit({ yoga }) {
      handler = createHandler(
        {
          async onSubscribe(req, params) {
            const enveloped = yoga.getEnveloped({ ...ctxForReq.get(req.raw), request: req.raw, params });
            let document: DocumentNode;
            try {
              document = enveloped.parse(params.query);
            } catch (error) {
              return refusal(mask([error]));
            }
            const errors = enveloped.validate(enveloped.schema, document);
            if (errors.length > 0) return refusal(mask(errors));
            let contextValue: unknown;
            try {
              contextValue = await enveloped.contextFactory();
            } catch (error) {
              if (!(error instanceof AppError) && !(error instanceof Error && 'extensions' in error)) throw error;
              return refusal(mask([error]));
            }
            const args = { schema: enveloped.schema, document, contextValue, variableValues: params.variables, operationName: params.operationName };
            const operation = getOperationAST(document, params.operationName);
            return (operation?.operation === 'subscription' ? enveloped.subscribe : enveloped.execute)(args) as never;
          },
        },
        yoga.fetchAPI as never,
      ) as (request: Request) => Promise<Response>;
    },
    onRequest({ request, endResponse, serverContext }) {
      const [path] = request.url.split('?');
      if (!path?.endsWith(endpoint) || !handler) return;
      ctxForReq.set(request, serverContext as Record<string, unknown>);
      return handler(request).then(endResponse);
    },
  };
}
