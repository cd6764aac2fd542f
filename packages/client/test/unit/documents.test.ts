/** The kit's documents: seq and afterSeq added where a resumable field needs them, polling and anchor queries derived. */
import { buildSchema, parse, stripIgnoredCharacters, validate } from 'graphql';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CURSOR_VARIABLE, prepareSubscription } from '../../src/documents.js';

const schema = buildSchema(readFileSync(path.resolve(import.meta.dirname, '../../../../schema.graphql'), 'utf8'));
/** The query without ignored characters (print() breaks long argument lists over lines). */
const flat = (query: string | undefined): string => stripIgnoredCharacters(query ?? '');
const valid = (query: string | undefined): void => {
  expect(query).toBeDefined();
  expect(validate(schema, parse(query!)).map((e) => e.message)).toEqual([]);
};

describe('resumable fields', () => {
  it('adds seq and an afterSeq variable, and says to strip seq', () => {
    const p = prepareSubscription('subscription($id: ID!) { reactions(sessionId: $id) { total } }');
    expect(flat(p.query)).toContain(`reactions(sessionId:$id afterSeq:$${CURSOR_VARIABLE})`);
    expect(flat(p.query)).toMatch(/total seq}/);
    expect(flat(p.query)).toContain(`$${CURSOR_VARIABLE}:Int`);
    expect(p.stripSeq).toBe(true);
    expect(p.cursorVariable).toBe(CURSOR_VARIABLE);
    expect(p.initialCursor({ id: 's' })).toBeNull();
    valid(p.query);
    valid(p.poll?.query);
    valid(p.anchorQuery);
    expect(flat(p.poll?.query)).toMatch(
      /reactions:reactionEvents\(sessionId:\$id afterSeq:\$ovationAfterSeq first:100\)\{cursor latestSeq hasMore events\{total seq\}/,
    );
    expect(flat(p.anchorQuery)).toMatch(/anchor:reactionEvents\(sessionId:\$id\)\{latestSeq\}/);
    expect(flat(p.anchorQuery)).not.toContain(CURSOR_VARIABLE);
  });

  it("keeps the app's own afterSeq variable and seq selected through a fragment", () => {
    const p = prepareSubscription(`
      fragment F on ChannelEvent { seq type }
      subscription Feed($channel: String!, $after: Int) { feed: channelEvent(channel: $channel, afterSeq: $after) { ...F data } }`);
    expect(p.stripSeq).toBe(false);
    expect(p.cursorVariable).toBe('after');
    expect(p.responseKey).toBe('feed');
    expect(p.initialCursor({ channel: 'c', after: 7 })).toBe(7);
    expect(flat(p.query)).not.toContain(CURSOR_VARIABLE);
    valid(p.query);
    valid(p.poll?.query);
    valid(p.anchorQuery);
    expect(p.poll?.shape).toBe('history');
    expect(flat(p.poll?.query)).toMatch(
      /feed:channelEvents\(channel:\$channel afterSeq:\$after first:100\)\{latestSeq hasMore missed events\{\.\.\.F data\}\}\}fragment F on ChannelEvent\{seq type\}$/,
    );
    expect(flat(p.anchorQuery)).toMatch(/channelEvents\(channel:\$channel first:1\)/);
    expect(flat(p.anchorQuery)).not.toContain('fragment F'); // unused there: it would not validate
  });

  it('turns a literal afterSeq into the initial cursor', () => {
    const p = prepareSubscription('subscription { notificationAdded(afterSeq: 5) { id } }');
    expect(p.initialCursor({})).toBe(5);
    expect(flat(p.query)).toContain(`notificationAdded(afterSeq:$${CURSOR_VARIABLE})`);
    expect(p.anchorQuery).toBeUndefined(); // its backlog would be skipped by a cursor
    valid(p.query);
    valid(p.poll?.query);
  });

  it('keeps only the variables a derived query uses', () => {
    const p = prepareSubscription(
      'subscription($c: ID!, $withBody: Boolean!) { messageAdded(conversationId: $c) { id body @include(if: $withBody) } }',
    );
    valid(p.query);
    valid(p.poll?.query);
    valid(p.anchorQuery);
    expect(flat(p.anchorQuery)).not.toContain('withBody');
  });
});

describe('snapshot and other fields', () => {
  it.each([
    [
      'subscription($c: ID!) { tallyUpdated(competitionId: $c) { seq totalVotes } }',
      /tallyUpdated:tally\(competitionId:\$c\)\{seq totalVotes\}/,
      'snapshot',
    ],
    [
      'subscription($s: ID!) { sessionUpdated(sessionId: $s) { seq status } }',
      /sessionUpdated:session\(id:\$s\)/,
      'snapshot',
    ],
    [
      'subscription($ids: [ID!]!) { p: presenceChanged(userIds: $ids) { userId status } }',
      /p:presence\(userIds:\$ids\)/,
      'snapshot-list',
    ],
  ])('%s is polled by its query', (document, pattern, shape) => {
    const p = prepareSubscription(document);
    expect(flat(p.query)).not.toContain(CURSOR_VARIABLE);
    expect(p.stripSeq).toBe(false);
    expect(p.poll?.shape).toBe(shape);
    expect(flat(p.poll?.query)).toMatch(pattern);
    valid(p.poll?.query);
  });

  it('leaves other fields alone, without a polling fallback', () => {
    const p = prepareSubscription('subscription($c: ID!) { typing(conversationId: $c) { isTyping } }');
    expect(p.stream).toBeUndefined();
    expect(p.poll).toBeUndefined();
    valid(p.query);
  });

  it('refuses what is not one subscription', () => {
    expect(() => prepareSubscription('query { me { id } }')).toThrow(/not a query/);
    expect(() =>
      prepareSubscription(
        'subscription A { typing(conversationId: "1") { isTyping } } subscription B { notificationAdded { id } }',
      ),
    ).toThrow(/operationName/);
  });
});
