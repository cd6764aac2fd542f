import { buildSchema, getOperationAST, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  bracketNesting,
  createQueryLimitsRule,
  DEFAULT_LIST_SIZE,
  fragmentsOf,
  hasVariablePaging,
  maxBracketNesting,
  measureOperation,
} from '../../src/guards/limits.js';
import { isServerOnlyMessage } from '../../src/transport/ws-server.js';

const schema = buildSchema(`
  type Query {
    me: User
    user(id: ID!): User
    users(first: Int): [User!]!
    feed(first: Int, after: String): Connection!
    tags: [String!]!
  }
  type User { id: ID! name: String! friends(first: Int): [User!]! posts: [Post!]! best: Post }
  type Post { id: ID! title: String! author: User! }
  type Connection { edges: [Edge!]! total: Int! }
  type Edge { node: Post! }
`);

function measure(query: string, variables?: Record<string, unknown>) {
  const document = parse(query);
  const operation = getOperationAST(document)!;
  return measureOperation(schema, operation, fragmentsOf(document), variables);
}

describe('measureOperation', () => {
  it.each([
    ['{ me { id } }', 2, 1],
    ['{ me { id name best { title author { name } } } }', 4, 3],
    ['{ tags }', 1, 0],
    ['{ __typename me { __typename id } }', 2, 1],
    // a list without paging args: 10 objects
    ['{ users { id name } }', 2, DEFAULT_LIST_SIZE],
    ['{ users(first: 3) { id name } }', 2, 3],
    ['{ users(first: 3) { friends(first: 5) { id } } }', 3, 3 * (1 + 5)],
    ['{ users(first: 2) { posts { id } } }', 3, 2 * (1 + DEFAULT_LIST_SIZE)],
    // a connection: first bounds edges (no second ×10)
    ['{ feed(first: 20) { total edges { node { id title } } } }', 4, 20 * (1 + 1 * (1 + 1))],
    // fragments and inline fragments add no depth or cost of their own
    ['{ me { ...F } } fragment F on User { id best { ... on Post { title } } }', 3, 1 + 1],
    // introspection is not measured here
    ['{ __schema { types { fields { type { ofType { ofType { name } } } } } } }', 0, 0],
  ])('%s → depth %i, cost %i', (query, depth, cost) => {
    expect(measure(query)).toMatchObject({ depth, cost });
  });

  it('reads first from variables, their defaults, else the default list size', () => {
    const query = 'query Q($n: Int) { users(first: $n) { id } }';
    expect(measure(query)).toMatchObject({ cost: DEFAULT_LIST_SIZE, variableBound: true });
    expect(measure(query, { n: 500 })).toMatchObject({ cost: 500 });
    expect(measure('query Q($n: Int = 7) { users(first: $n) { id } }')).toMatchObject({ cost: 7 });
    expect(measure('{ users(first: 7) { id } }').variableBound).toBe(false);
    expect(hasVariablePaging(parse(query))).toBe(true);
    expect(hasVariablePaging(parse('query Q($id: ID!) { user(id: $id) { id } }'))).toBe(false);
  });

  it('measures each fragment once: a fragment bomb is linear, not exponential', () => {
    const names = Array.from({ length: 60 }, (_, i) => `F${i}`);
    const fragments = names.map((name, i) =>
      i === names.length - 1
        ? `fragment ${name} on User { id }`
        : `fragment ${name} on User { ...${names[i + 1]} ...${names[i + 1]} friends(first: 1) { id } }`,
    );
    const started = performance.now();
    const result = measure(`{ me { ...F0 } } ${fragments.join(' ')}`);
    expect(performance.now() - started).toBeLessThan(200);
    expect(result.cost).toBeGreaterThan(1e15); // 2^59: refused by any limit
  });

  it('survives fragment cycles (NoFragmentCyclesRule reports them)', () => {
    expect(() => measure('{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A id }')).not.toThrow();
  });
});

describe('the validation rule', () => {
  const rule = createQueryLimitsRule({ maxDepth: 3, maxComplexity: 30 });
  const check = (query: string) => validate(schema, parse(query), [...specifiedRules, rule]);

  it('accepts operations within the limits', () => {
    expect(check('{ me { id best { title } } }')).toEqual([]);
  });

  it('refuses a deep operation with BAD_USER_INPUT / QUERY_TOO_DEEP', () => {
    const [error, ...rest] = check('{ me { best { author { name } } } }');
    expect(rest).toEqual([]);
    expect(error?.message).toBe('Query is too deep: depth 4 exceeds the maximum of 3');
    expect(error?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      retryable: false,
      reason: 'QUERY_TOO_DEEP',
      depth: 4,
      maxDepth: 3,
    });
  });

  it('refuses a costly operation with BAD_USER_INPUT / QUERY_TOO_COMPLEX', () => {
    const [error] = check('{ users(first: 100) { id } }');
    expect(error?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      retryable: false,
      reason: 'QUERY_TOO_COMPLEX',
      cost: 100,
      maxComplexity: 30,
    });
  });

  it('counts aliases: the same field twice costs twice', () => {
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: me { id }`).join(' ');
    expect(check(`{ ${aliases} }`)[0]?.extensions?.['reason']).toBe('QUERY_TOO_COMPLEX');
  });
});

describe('bracketNesting (before parsing)', () => {
  it.each([
    ['{ a }', 1],
    ['{ a { b(x: [1, {y: 2}]) } }', 5],
    ['{ a(s: "{{{{{{") }', 2],
    ['{ a(s: "\\"{{{") }', 2],
    ['{ a(s: """ {{{ \\""" {{{ """) }', 2],
    ['# {{{{{{\n{ a }', 1],
    ['}}}{', 1],
    ['', 0],
  ])('%j → %i', (source, depth) => {
    expect(bracketNesting(source, 100)).toBe(depth);
  });

  it('stops counting past the limit', () => {
    expect(bracketNesting('{'.repeat(100_000), 128)).toBe(129);
  });

  it('leaves room for MAX_QUERY_DEPTH and stays far below the parser stack', () => {
    expect(maxBracketNesting(12)).toBe(128);
    expect(maxBracketNesting(100)).toBe(332);
    const nested = (n: number) => '{' + 'a{'.repeat(n - 1) + 'b' + '}'.repeat(n - 1) + '}';
    expect(() => parse(nested(maxBracketNesting(100)))).not.toThrow();
  });
});

describe('graphql-ws messages a client may not send', () => {
  it.each([
    ['{"type":"connection_ack"}', true],
    ['{"type":"next","id":"1","payload":{}}', true],
    ['{"type":"error","id":"1","payload":[]}', true],
    ['{"type":"whatever"}', true],
    ['{"type":"connection_init"}', false],
    ['{"type":"subscribe","id":"1","payload":{"query":"{a}"}}', false],
    ['{"type":"complete","id":"1"}', false],
    ['{"id":"1","type":"subscribe","payload":{"query":"subscription { next }"}}', false],
    ['{"id":"1","type":"next","payload":{"data":{}}}', true],
    ['{"payload":{"query":"{a}"},"type":"subscribe","id":"1"}', false],
    ['{"type":"ping"}', false],
    ['{"type":"pong"}', false],
    ['{"type":""}', false],
    ['{"type":5}', false],
    ['not json', false],
    ['[{"type":"next"}]', false],
  ])('%s → %s', (raw, refused) => {
    expect(isServerOnlyMessage(raw)).toBe(refused);
  });
});
