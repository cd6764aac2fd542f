/**
 * The pino logger behind the Logger interface: JSON lines with level names, the requestId of the
 * operation a line belongs to (also deep in async work it started), child fields, Error fields,
 * and no credential in any line.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, withRequestContext } from '../../src/infra/logger.js';

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => lines.push(line) });
  return { logger, lines, last: () => JSON.parse(lines.at(-1)!) as Record<string, unknown> };
}

describe('logger', () => {
  it('writes one JSON object per line with an ISO time, the level name and the message', () => {
    const { logger, last } = capture();
    logger.warn('disk low', { freeBytes: 10 });
    expect(last()).toMatchObject({ level: 'warn', msg: 'disk low', freeBytes: 10 });
    expect(Date.parse(last()['time'] as string)).not.toBeNaN();
  });

  it('drops lines below its level', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
    logger.info('quiet');
    logger.debug('quieter');
    expect(lines).toEqual([]);
  });

  it('carries the requestId of the operation into every line it causes, across awaits', async () => {
    const { logger, lines } = capture();
    await withRequestContext({ requestId: 'req-1' }, async () => {
      logger.info('start');
      await new Promise((resolve) => setTimeout(resolve, 1));
      logger.error('deep in a service');
    });
    logger.info('outside');
    expect(lines.map((l) => (JSON.parse(l) as { requestId?: string }).requestId)).toEqual([
      'req-1',
      'req-1',
      undefined,
    ]);
  });

  it('adds a child’s fields to its lines', () => {
    const { logger, last } = capture();
    logger.child({ pid: 7 }).info('hello');
    expect(last()).toMatchObject({ pid: 7, msg: 'hello' });
  });

  it('writes Errors with name, message and stack (Yoga passes them as the message or the fields)', () => {
    const { logger, last } = capture();
    logger.error('failed', { error: new TypeError('boom') });
    expect(last()['error']).toMatchObject({
      name: 'TypeError',
      message: 'boom',
      stack: expect.stringContaining('TypeError: boom'),
    });
    (logger.error as (m: unknown, f?: unknown) => void)(new Error('as message'), new Error('as fields'));
    expect(last()).toMatchObject({ msg: 'as message', detail: { message: 'as fields' } });
  });

  it.each([
    ['authorization', { authorization: 'Bearer eyJhbGciOi.secret.sig' }],
    ['a nested token', { connectionParams: { authorization: 'Bearer abc' }, payload: { token: 'abc' } }],
    ['headers', { request: { headers: { authorization: 'Bearer abc', cookie: 'sid=abc' } } }],
    ['secrets and passwords', { jwtSecret: 'abc', config: { metricsToken: 'abc', password: 'abc' } }],
  ])('redacts %s', (_, fields) => {
    const { logger, lines } = capture();
    logger.info('with credentials', fields);
    expect(lines.at(-1)).not.toMatch(/abc|eyJhbGciOi/);
    expect(lines.at(-1)).toContain('[redacted]');
  });
});
