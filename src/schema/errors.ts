/**
 * The one place where failures become GraphQL errors. AppErrors (the contract's catalogue) keep
 * their message and get `extensions.code` and `extensions.retryable`; GraphQL's own request errors
 * (syntax, validation, variable coercion) are the client's input, so BAD_USER_INPUT; anything else
 * is unexpected: logged, and masked as INTERNAL_SERVER_ERROR with no internals.
 */
import { GraphQLError } from 'graphql';
import { AppError, ErrorCode, RETRYABLE } from '../errors.js';

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

export function createMaskError(opts: { exposeInternals: boolean; onUnexpected: (error: unknown) => void }) {
  return function maskError(error: unknown, message: string): Error {
    const graphqlError = error instanceof GraphQLError ? error : undefined;
    const original = graphqlError?.originalError ?? error;

    if (original instanceof AppError) {
      const base = graphqlError ?? new GraphQLError(original.message);
      return withExtensions(base, original.message, { ...original.details, code: original.code, retryable: original.retryable });
    }

    if (graphqlError && (graphqlError.originalError === undefined || graphqlError.originalError instanceof GraphQLError)) {
      const inner = (graphqlError.originalError as GraphQLError | undefined) ?? graphqlError;
      const code = inner.extensions?.code;
      if (typeof code === 'string' && CATALOGUE.has(code)) {
        return withExtensions(graphqlError, inner.message, { ...inner.extensions, code, retryable: RETRYABLE[code as ErrorCode] });
      }
      // Parse/validation/coercion problems; keep Yoga's finer code (and HTTP status) as `reason`.
      const { code: reason, http, ...rest } = inner.extensions ?? {};
      return withExtensions(graphqlError, inner.message, {
        ...rest,
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
