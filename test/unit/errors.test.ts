import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode, RETRYABLE, badInput } from '../../src/errors.js';
import { createMaskError } from '../../src/schema/errors.js';

describe('maskError', () => {
  const unexpected: unknown[] = [];
  const mask = createMaskError({ exposeInternals: false, onUnexpected: (e) => unexpected.push(e) });

  it.each(Object.values(ErrorCode).filter((c) => c !== 'INTERNAL_SERVER_ERROR'))(
    'keeps %s with its retryable flag',
    (code) => {
      const wrapped = new GraphQLError('resolver failed', {
        originalError: new AppError(code, 'why', { field: 'x' }),
        path: ['a'],
      });
      const result = mask(wrapped, 'Unexpected error.') as GraphQLError;
      expect(result.message).toBe('why');
      expect(result.path).toEqual(['a']);
      expect(result.extensions).toEqual({ field: 'x', code, retryable: RETRYABLE[code] });
    },
  );

  it('masks unexpected errors without internals and reports them', () => {
    const secret = new Error('connection to 10.0.0.5 refused; password=hunter2');
    const result = mask(
      new GraphQLError(secret.message, { originalError: secret }),
      'Unexpected error.',
    ) as GraphQLError;
    expect(result.message).toBe('Unexpected error.');
    expect(result.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', retryable: true });
    expect(JSON.stringify(result)).not.toContain('hunter2');
    expect(unexpected).toContain(secret);
  });

  it('exposes internals only when asked (development)', () => {
    const dev = createMaskError({ exposeInternals: true, onUnexpected: () => undefined });
    const result = dev(new Error('boom'), 'Unexpected error.') as GraphQLError;
    expect(result.extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', originalError: { message: 'boom' } });
  });

  it('turns GraphQL request errors into BAD_USER_INPUT, keeping the finer reason', () => {
    const validation = new GraphQLError('Cannot query field "nope"', {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
    expect((mask(validation, 'x') as GraphQLError).extensions).toEqual({
      code: 'BAD_USER_INPUT',
      retryable: false,
      reason: 'GRAPHQL_VALIDATION_FAILED',
    });
  });

  // Yoga's error for a body that is not JSON quotes the body in extensions.originalError.
  const invalidJson = () =>
    new GraphQLError('POST body sent invalid JSON.', {
      extensions: {
        http: { spec: true, status: 400 },
        code: 'BAD_REQUEST',
        originalError: { name: 'SyntaxError', message: '"{\\"password\\": hunter2" is not valid JSON' },
      },
    });

  it('drops the original error of a request error (it echoes the body) unless internals are exposed', () => {
    const result = mask(invalidJson(), 'x') as GraphQLError;
    expect(result.extensions).toEqual({
      http: { spec: true, status: 400 },
      code: 'BAD_USER_INPUT',
      retryable: false,
      reason: 'BAD_REQUEST',
    });
    expect(JSON.stringify(result)).not.toContain('hunter2');
    const dev = createMaskError({ exposeInternals: true, onUnexpected: () => undefined });
    expect((dev(invalidJson(), 'x') as GraphQLError).extensions).toMatchObject({
      originalError: { name: 'SyntaxError' },
    });
  });

  it('maps an AppError thrown outside a resolver (context creation)', () => {
    const result = mask(badInput('input.x', 'bad'), 'x') as GraphQLError;
    expect(result).toBeInstanceOf(GraphQLError);
    expect(result.extensions).toEqual({ field: 'input.x', code: 'BAD_USER_INPUT', retryable: false });
  });
});
