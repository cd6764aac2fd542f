import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import {
  BODY_MAX_CHARS,
  directKeyOf,
  olderCursor,
  pageOldestFirst,
  pageSize,
  planConversation,
  validateBody,
  validateClientMessageId,
  validateTitle,
} from '../../src/modules/messaging/messaging.rules.js';

function failure(fn: () => unknown): { code: string; field: unknown } | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { code: error.code, field: error.details['field'] };
  }
}

describe('validateBody', () => {
  it.each([
    ['hello', 'hello'],
    ['  padded\n', 'padded'],
    ['a'.repeat(BODY_MAX_CHARS), 'a'.repeat(BODY_MAX_CHARS)],
    // 4000 emoji are 8000 UTF-16 units but 4000 characters.
    ['😀'.repeat(BODY_MAX_CHARS), '😀'.repeat(BODY_MAX_CHARS)],
    [`  ${'b'.repeat(BODY_MAX_CHARS)}  `, 'b'.repeat(BODY_MAX_CHARS)],
  ])('accepts %j', (input, expected) => {
    expect(validateBody(input)).toBe(expected);
  });

  it.each([[''], ['   '], ['\n\t'], ['a'.repeat(BODY_MAX_CHARS + 1)], ['😀'.repeat(BODY_MAX_CHARS + 1)]])(
    'rejects %j as input.body',
    (input) => {
      expect(failure(() => validateBody(input))).toEqual({ code: 'BAD_USER_INPUT', field: 'input.body' });
    },
  );
});

describe('validateClientMessageId / validateTitle', () => {
  it.each([
    [undefined, null],
    [null, null],
    ['c-1', 'c-1'],
    [' spaced ', ' spaced '],
    ['x'.repeat(128), 'x'.repeat(128)],
  ])('clientMessageId %j → %j', (input, expected) => {
    expect(validateClientMessageId(input)).toBe(expected);
  });

  it.each([[''], ['  '], ['x'.repeat(129)]])('rejects clientMessageId %j', (input) => {
    expect(failure(() => validateClientMessageId(input))).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'input.clientMessageId',
    });
  });

  it.each([
    [undefined, null],
    ['', null],
    ['   ', null],
    [' Team ', 'Team'],
  ])('title %j → %j', (input, expected) => {
    expect(validateTitle(input)).toBe(expected);
  });

  it('rejects a title over 200 characters', () => {
    expect(failure(() => validateTitle('t'.repeat(201)))).toEqual({ code: 'BAD_USER_INPUT', field: 'title' });
  });
});

describe('planConversation', () => {
  it('one other participant and no title is the direct conversation of the pair, whoever creates it', () => {
    const ab = planConversation('alice', ['bob'], null);
    const ba = planConversation('bob', ['alice'], undefined);
    expect(ab).toMatchObject({ kind: 'direct', other: { id: 'bob', index: 0 } });
    expect(ab.kind === 'direct' && ba.kind === 'direct' && ab.directKey === ba.directKey).toBe(true);
    expect(directKeyOf('a', 'b')).toBe(directKeyOf('b', 'a'));
    expect(directKeyOf('a|b', 'c')).not.toBe(directKeyOf('a', 'b|c'));
  });

  it.each([
    ['the creator named too', ['alice', 'bob'], null, { kind: 'direct' }],
    ['a repeated id', ['bob', 'bob'], null, { kind: 'direct' }],
    ['a blank title', ['bob'], '  ', { kind: 'direct' }],
    ['a title', ['bob'], 'Plans', { kind: 'group', title: 'Plans' }],
    ['two others', ['bob', 'carol'], null, { kind: 'group', title: null }],
  ])('%s', (_name, ids, title, expected) => {
    expect(planConversation('alice', ids, title)).toMatchObject(expected);
  });

  it('keeps each other participant with its index in participantIds (for error paths)', () => {
    const plan = planConversation('alice', ['bob', 'alice', 'carol', 'bob', 'dave'], null);
    expect(plan.kind === 'group' && plan.others).toEqual([
      { id: 'bob', index: 0 },
      { id: 'carol', index: 2 },
      { id: 'dave', index: 4 },
    ]);
  });

  it.each([
    ['nobody', [], 'participantIds'],
    ['only the creator', ['alice'], 'participantIds'],
    ['a blank id', ['bob', ' '], 'participantIds[1]'],
    ['101 participants', Array.from({ length: 100 }, (_, i) => `u${i}`), 'participantIds'],
  ])('rejects %s', (_name, ids, field) => {
    expect(failure(() => planConversation('alice', ids, null))).toEqual({ code: 'BAD_USER_INPUT', field });
  });

  it('accepts 100 participants', () => {
    expect(
      planConversation(
        'alice',
        Array.from({ length: 99 }, (_, i) => `u${i}`),
        null,
      ),
    ).toMatchObject({ kind: 'group' });
  });
});

describe('history pages', () => {
  it.each([
    [undefined, 50],
    [null, 50],
    [1, 1],
    [100, 100],
  ])('last %j → page of %i', (last, size) => {
    expect(pageSize(last)).toBe(size);
  });

  it.each([[0], [-1], [101], [2.5]])('rejects last %j', (last) => {
    expect(failure(() => pageSize(last))).toEqual({ code: 'BAD_USER_INPUT', field: 'last' });
  });

  const rows = (...seqs: number[]) => seqs.map((seq) => ({ id: `m${seq}`, seq }));

  it('turns rows read newest first into a page that ends with the newest', () => {
    expect(pageOldestFirst(rows(9, 8, 7)).map((m) => m.seq)).toEqual([7, 8, 9]);
    expect(pageOldestFirst([])).toEqual([]);
  });

  it('refuses rows that are not newest first (a wrong ORDER BY would otherwise go unnoticed)', () => {
    expect(() => pageOldestFirst(rows(7, 8, 9))).toThrow();
    expect(() => pageOldestFirst(rows(9, 9))).toThrow();
  });

  it('walks 10 messages back in pages of 4: the next cursor is the first message of a full page', () => {
    const all = rows(...Array.from({ length: 10 }, (_, i) => i + 1)); // seq 1..10
    const read = (last: number, beforeSeq?: number) =>
      pageOldestFirst(
        all
          .filter((m) => beforeSeq === undefined || m.seq < beforeSeq)
          .sort((a, b) => b.seq - a.seq)
          .slice(0, last),
      );
    const pages: number[][] = [];
    let before: number | undefined;
    for (;;) {
      const page = read(4, before);
      pages.push(page.map((m) => m.seq));
      const cursor = olderCursor(page, 4);
      if (cursor === null) break;
      before = all.find((m) => m.id === cursor)!.seq;
    }
    expect(pages).toEqual([
      [7, 8, 9, 10],
      [3, 4, 5, 6],
      [1, 2],
    ]);
  });
});
