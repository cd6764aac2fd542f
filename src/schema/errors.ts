/**
 * The one place where failures become GraphQL errors. AppErrors (the contract's catalogue) keep
 * their message and get `extensions.code` and `extensions.retryable`; GraphQL's own request errors
 * (syntax, validation, variable coercion) are the client's input, so BAD_USER_INPUT; anything else
 * is unexpected: logged, and masked as INTERNAL_SERVER_ERROR with no internals.
 */
import { GraphQLError, type ASTNode, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { AppError, ErrorCode, RETRYABLE } from '../errors.js';
import type { SubscribeHooks } from '../realtime/stream.js';

const CATALOGUE = new Set<string>(Object.values(ErrorCode));

function withExtensions(error: GraphQLError, message: string, extensions: Record<string, unknown>): GraphQLError {
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions,
  });
}

/**
 * An AppError in its final wire form (message, `code`, `retryable`, its details), for errors a
 * plugin or a scalar returns outside a resolver: the one way to build a client-facing error.
 */
export function toGraphQLError(error: AppError, nodes?: readonly ASTNode[] | ASTNode): GraphQLError {
  return new GraphQLError(error.message, {
    nodes,
    originalError: error,
    extensions: { ...error.details, code: error.code, retryable: error.retryable },
  });
}

export function createMaskError(opts: { exposeInternals: boolean; onUnexpected: (error: unknown) => void }) {
  return function maskError(error: unknown, message: string): Error {
    const graphqlError = error instanceof GraphQLError ? error : undefined;
    const original = graphqlError?.originalError ?? error;

    if (original instanceof AppError) {
      const base = graphqlError ?? new GraphQLError(original.message);
      return withExtensions(base, original.message, {
        ...original.details,
        code: original.code,
        retryable: original.retryable,
      });
    }

    if (
      graphqlError &&
      (graphqlError.originalError === undefined || graphqlError.originalError instanceof GraphQLError)
    ) {
      const inner = graphqlError.originalError ?? graphqlError;
      const code = inner.extensions?.code;
      if (typeof code === 'string' && CATALOGUE.has(code)) {
        return withExtensions(graphqlError, inner.message, {
          ...inner.extensions,
          code,
          retryable: RETRYABLE[code as ErrorCode],
        });
      }
      // Parse/validation/coercion problems; keep Yoga's finer code (and HTTP status) as `reason`.
      // Yoga's "invalid JSON" error carries the parser's message as `originalError`, which quotes
      // the request body: internals, kept for development only.
      const { code: reason, http, originalError, ...rest } = inner.extensions ?? {};
      return withExtensions(graphqlError, inner.message, {
        ...rest,
        ...(opts.exposeInternals && originalError !== undefined && { originalError }),
        ...(http !== undefined && { http }),
        code: ErrorCode.BAD_USER_INPUT,
        retryable: false,
        ...(typeof reason === 'string' && { reason }),
      });
    }

    opts.onUnexpected(original);
    const extensions: Record<string, unknown> = { code: ErrorCode.INTERNAL_SERVER_ERROR, retryable: true };
    if (opts.exposeInternals && original instanceof Error) {
      extensions.originalError = { message: original.message, stack: original.stack?.split('\n') };
    }
    return graphqlError ? withExtensions(graphqlError, message, extensions) : new GraphQLError(message, { extensions });
  };
}

/**
 * The catalogue code a client will see for `error`, masked or not (the same decisions as
 * maskError, without building the masked error): for metrics and access logs.
 */
export function errorCodeOf(error: unknown): ErrorCode {
  const graphqlError = error instanceof GraphQLError ? error : undefined;
  const original = graphqlError?.originalError ?? error;
  if (original instanceof AppError) return original.code;
  if (
    graphqlError &&
    (graphqlError.originalError === undefined || graphqlError.originalError instanceof GraphQLError)
  ) {
    const code = (graphqlError.originalError ?? graphqlError).extensions?.code;
    return typeof code === 'string' && CATALOGUE.has(code) ? (code as ErrorCode) : ErrorCode.BAD_USER_INPUT;
  }
  return ErrorCode.INTERNAL_SERVER_ERROR;
}

/** One object for every subscription (SubscribeHooks). */
const WITH_DATA: SubscribeHooks = {
  onSubscribeResult({ result, setResult }) {
    if (!isAsyncIterable(result) && !('data' in result)) setResult({ ...result, data: null });
  },
};

/**
 * Request-level errors (syntax, validation, bad variables) never reach Yoga's maskError: this
 * plugin gives them the catalogue's code and `retryable` too, so every error a client sees has
 * both, on every transport that goes through Yoga's result processing.
 */
export function useErrorCatalogue(maskError: (error: unknown, message: string) => Error): Plugin {
  const normalize = (result: ExecutionResult): ExecutionResult => {
    if (!result.errors?.length) return result;
    const errors = result.errors.map((error) => {
      const code = error.extensions?.code;
      const done = typeof code === 'string' && CATALOGUE.has(code) && typeof error.extensions?.retryable === 'boolean';
      return done ? error : (maskError(error, error.message) as GraphQLError);
    });
    return { ...result, errors };
  };
  return {
    // A subscription that fails before it starts (NOT_FOUND, FORBIDDEN) resolves to
    // `{ errors }` without `data`; graphql-sse only recognises results that have a `data` key and
    // otherwise answers 400. `data: null` is what the spec says such a result carries anyway.
    onSubscribe: () => WITH_DATA,
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result)) setResult(result.map((r: ExecutionResult) => normalize(r)));
      else if (!isAsyncIterable(result)) setResult(normalize(result as ExecutionResult));
    },
  };
}
