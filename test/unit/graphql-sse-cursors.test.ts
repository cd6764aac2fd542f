/**
 * The cursor map that graphql-sse's single-connection streams write as each event's `id:` and take
 * back as `Last-Event-ID` (src/transport/graphql-sse-protocol.ts): what it writes it reads back,
 * whatever the operation ids hold; anything else is BAD_USER_INPUT.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { formatCursorMap, parseCursorMap } from '../../src/transport/graphql-sse-protocol.js';

const line = (entries: [string, number][]) =>
  formatCursorMap(entries.map(([id, seq]) => ({ encoded: encodeURIComponent(id), seq })));

describe('graphql-sse cursor map', () => {
  it.each<[string, [string, number][]]>([
    [
      'uuids',
      [
        ['4d3c3c1e-8f9b-4f5a-9a43-2f6f0e9b1c2d', 12],
        ['a7f1', 0],
      ],
    ],
    [
      'the format’s separators and percent signs',
      [
        ['a:b', 1],
        ['c,d', 2],
        ['50%', 3],
        ['%3A', 4],
      ],
    ],
    ['non-ASCII ids and the largest seq', [['opé 🎉', 2_147_483_647]]],
  ])('reads back what it writes: %s', (_name, entries) => {
    const written = line(entries);
    expect(written).toMatch(/^[A-Za-z0-9\-_.!~*'()%]+:\d+(,[A-Za-z0-9\-_.!~*'()%]+:\d+)*$/); // no raw ',' or ':' inside ids, no newline
    expect([...parseCursorMap(written, 10)]).toEqual(entries);
  });

  it('writes nothing for an empty map, and reads none from an absent or empty header', () => {
    expect(formatCursorMap([])).toBe('');
    expect(parseCursorMap(undefined, 10).size).toBe(0);
    expect(parseCursorMap(null, 10).size).toBe(0);
    expect(parseCursorMap('', 10).size).toBe(0);
  });

  it.each([
    '7',
    'a',
    'a:',
    ':1',
    'a:-1',
    'a:1.5',
    'a:1,',
    ',a:1',
    'a:1,a:2',
    'a:2147483648',
    'a:99999999999',
    '%E0%A4%A:1',
    'a:1 ',
    'a:1,b:2,c:3',
  ])('refuses %j with BAD_USER_INPUT', (header) => {
    let error: unknown;
    try {
      parseCursorMap(header, 2);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', details: { field: 'Last-Event-ID' } });
  });
});
