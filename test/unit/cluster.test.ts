import { describe, expect, it } from 'vitest';
import { restartDelayMs, withFields } from '../../src/cluster.js';
import { createLogger } from '../../src/infra/logger.js';

describe('withFields (a worker names itself on every log line)', () => {
  const lines: string[] = [];
  const log = withFields(createLogger({ level: 'debug', write: (line) => lines.push(line) }), { pid: 42 });
  const last = (): Record<string, unknown> => JSON.parse(lines.at(-1)!) as Record<string, unknown>;

  it.each([
    ['no fields', undefined, { pid: 42 }],
    ['fields', { competitionId: 'c1' }, { competitionId: 'c1', pid: 42 }],
    [
      'an Error where fields go (Yoga does)',
      new Error('boom'),
      { detail: { name: 'Error', message: 'boom' }, pid: 42 },
    ],
    ['a string where fields go', 'why', { detail: 'why', pid: 42 }],
  ])('adds them to %s', (_, fields, expected) => {
    log.warn('something', fields as Record<string, unknown> | undefined);
    expect(last()).toMatchObject({ level: 'warn', msg: 'something', ...expected });
  });
});

it('restarts a dying worker after 250 ms, doubling with each death within a minute, up to 15 s', () => {
  expect([1, 2, 3, 4, 5, 6, 7, 8].map(restartDelayMs)).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
});
