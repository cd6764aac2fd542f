/**
 * Fuzzing the public surface of one real server process (PostgreSQL, so that rows can be counted
 * from outside): thousands of malformed HTTP requests, SSE requests (both modes) and WebSocket
 * frames, from a seeded PRNG (FUZZ_SEED to replay). Expected: no 5xx, no WebSocket closed with an
 * internal-error code, nothing logged as unexpected, the process alive and /health and /ready 200
 * afterwards, and no partial writes: every castVote attempt in the fuzz is malformed or invalid, so
 * the Vote and BallotEntry row counts must not move.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CastVoteDocument } from '../generated/graphql.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { freshDatabase, type TestDatabase } from '../support/backends.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20_261_122);
const HTTP_REQUESTS = 1_500;
const SSE_REQUESTS = 400;
const WS_CONNECTIONS = 300;
const CONCURRENCY = 8;
const WS_MAX_MESSAGE_BYTES = 64 * 1024;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
    chance: (p: number): boolean => next() < p,
    bytes: (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256))),
    text: (n: number): string => Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join(''),
  };
}
type Rng = ReturnType<typeof prng>;

let server: ServerProcess;
let database: TestDatabase;
let db: pg.Client;
let competitionId: string;
let submissionIds: string[];
let voterToken: string;

beforeAll(async () => {
  database = await freshDatabase({ migrated: false });
  const databaseUrl = database.url;
  server = await startServerProcess({
    DATABASE_URL: databaseUrl,
    WS_MAX_MESSAGE_BYTES: String(WS_MAX_MESSAGE_BYTES),
    LOG_LEVEL: 'warn',
  });
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  ({ competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 3));
  // A few real votes, so that "unchanged" means something.
  for (let i = 0; i < 3; i += 1) {
    const token = await tokenFor({ sub: `fuzz-real-${i}` });
    dataOf(
      await execute(
        fetch,
        server.graphqlUrl,
        CastVoteDocument,
        { input: { competitionId, submissionId: submissionIds[i]! } },
        token,
      ),
    );
  }
  voterToken = await tokenFor({ sub: 'fuzz-voter' });
}, 120_000);

afterAll(async () => {
  await db?.end().catch(() => undefined);
  await server?.stop();
  await database?.drop();
});

async function rowCounts(): Promise<{ votes: number; ballots: number }> {
  const votes = await db.query<{ n: string }>('SELECT count(*) AS n FROM "Vote"');
  const ballots = await db.query<{ n: string }>('SELECT count(*) AS n FROM "BallotEntry"');
  return { votes: Number(votes.rows[0]!.n), ballots: Number(ballots.rows[0]!.n) };
}

async function pool<T>(count: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let nextIndex = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (nextIndex < count) {
        const i = nextIndex++;
        results[i] = await run(i);
      }
    }),
  );
  return results;
}

const CAST_VOTE =
  'mutation CastVote($input: CastVoteInput!) { castVote(input: $input) { vote { id } creditsRemaining } }';
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/graphql+json',
  'application/graphql-response+json',
  'application/graphql',
  'text/plain',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'text/event-stream',
  '',
  ';;;',
];

/** castVote inputs that can never write: unknown ids, fields that do not belong to SIMPLE, wrong types. */
function invalidVoteVariables(rng: Rng): unknown {
  const s = rng.pick(submissionIds);
  return rng.pick<unknown>([
    { input: { competitionId, submissionId: 'no-such-submission' } },
    { input: { competitionId: 'no-such-competition', submissionId: s } },
    { input: { competitionId, submissionId: s, votes: 3 } },
    { input: { competitionId, ranking: [s] } },
    { input: { competitionId, approvals: [s] } },
    { input: { competitionId, submissionId: s, ranking: [s] } },
    { input: { competitionId, submissionId: 12345 } },
    { input: { competitionId, submissionId: s, unknownField: true } },
    { input: { competitionId } },
    { input: null },
    {},
    { input: { competitionId: { $gt: '' }, submissionId: s } },
    { input: { competitionId, submissionId: [s, s] } },
    { input: { competitionId, submissionId: s, votes: '1' } },
    { input: { competitionId, submissionId: s, idempotencyKey: 42 } },
    'variables',
    [1, 2, 3],
    42,
  ]);
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.int(2_000_000) - 1_000_000;
    case 3:
      return rng.text(rng.int(40));
    case 4:
      return rng.pick(['', '{', '}', 'query', 'subscription', '__proto__', 'constructor', '\u0000', '\ud800', '💥']);
    case 5:
      return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.int(5) }, () => [
          rng.pick([
            'query',
            'variables',
            'operationName',
            'extensions',
            'id',
            'type',
            'payload',
            '__proto__',
            rng.text(6),
          ]),
          randomJson(rng, depth + 1),
        ]),
      );
  }
}

function randomQuery(rng: Rng): string {
  return rng.pick([
    () => CAST_VOTE,
    () => CAST_VOTE.slice(0, rng.int(CAST_VOTE.length)),
    () => `{ ${'a{'.repeat(rng.int(3_000))} }`,
    () => '{' + 'leaderboard(competitionId: "x") { submissionId } '.repeat(rng.int(300)) + '}',
    () => `query { ${rng.text(rng.int(200))} }`,
    () => `subscription { tallyUpdated(competitionId: "${competitionId}") { seq } }`,
    () => 'query A { __typename } query B { __typename }',
    () => '{ __schema { types { name fields { name type { ofType { ofType { ofType { name } } } } } } } }',
    () => `{ ${Array.from({ length: 500 }, (_, i) => `a${i}: __typename`).join(' ')} }`,
    () => '{ __typename @include(if: true) @skip(if: false) @deprecated }',
    () => rng.text(rng.int(500)),
    () => `fragment F on Query { ...F } { ...F }`,
  ])();
}

/** One malformed (or harmless) HTTP request. Every castVote it sends is invalid. */
function httpCase(rng: Rng, url: string): { url: string; init: RequestInit; note: string } {
  const headers: Record<string, string> = {};
  if (rng.chance(0.4))
    headers['authorization'] = rng.chance(0.7)
      ? `Bearer ${voterToken}`
      : rng.pick([
          'Bearer',
          'Bearer x.y.z',
          `Basic ${rng.text(20)}`,
          `Bearer ${'a'.repeat(4_000)}`,
          'bearer  ' + voterToken,
        ]);
  if (rng.chance(0.1)) headers['x-device-id'] = rng.text(rng.int(400));
  if (rng.chance(0.1)) headers['x-forwarded-for'] = rng.pick(['1.2.3.4', '::1, 10.0.0.1', rng.text(60), '']);
  if (rng.chance(0.2))
    headers['accept'] = rng.pick([
      'application/graphql-response+json',
      'text/html',
      '*/*',
      'application/xml',
      'text/event-stream',
      'multipart/mixed',
    ]);
  const kind = rng.int(12);
  const post = (body: string | Buffer, contentType = rng.pick(CONTENT_TYPES)) => {
    if (contentType) headers['content-type'] = contentType;
    return {
      url: `${url}/graphql`,
      init: { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) },
    };
  };
  switch (kind) {
    case 0:
      return { ...post(rng.bytes(rng.int(2_000))), note: 'random bytes' };
    case 1: {
      const valid = JSON.stringify({
        query: CAST_VOTE,
        variables: { input: { competitionId, submissionId: rng.pick(submissionIds) } },
      });
      headers['authorization'] = `Bearer ${voterToken}`;
      return { ...post(valid.slice(0, rng.int(valid.length)), 'application/json'), note: 'truncated castVote' };
    }
    case 2:
      headers['authorization'] = `Bearer ${voterToken}`;
      return {
        ...post(JSON.stringify({ query: CAST_VOTE, variables: invalidVoteVariables(rng) }), 'application/json'),
        note: 'invalid castVote',
      };
    case 3: {
      const base = Buffer.from(
        JSON.stringify({
          query: CAST_VOTE,
          variables: { input: { competitionId: 'fuzz-nonexistent', submissionId: rng.pick(submissionIds) } },
        }),
      );
      for (let flips = 1 + rng.int(8); flips > 0; flips -= 1) base[rng.int(base.length)] = rng.int(256);
      headers['authorization'] = `Bearer ${voterToken}`;
      return { ...post(base, 'application/json'), note: 'bit-flipped castVote' };
    }
    case 4: {
      const body = Buffer.concat([
        Buffer.from('{"query":"{ __typename '),
        Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]),
        Buffer.from(' }"}'),
      ]);
      return { ...post(body, 'application/json'), note: 'invalid UTF-8' };
    }
    case 5:
      return {
        ...post(
          JSON.stringify({
            query: randomQuery(rng),
            variables: rng.chance(0.5) ? randomJson(rng) : undefined,
            operationName: rng.chance(0.2) ? rng.text(5) : undefined,
          }),
          'application/json',
        ),
        note: 'odd query',
      };
    case 6:
      return { ...post(JSON.stringify(randomJson(rng)), rng.pick(CONTENT_TYPES)), note: 'random JSON' };
    case 7:
      return {
        ...post(
          JSON.stringify(
            Array.from({ length: rng.int(16) }, () =>
              rng.chance(0.5) ? { query: randomQuery(rng) } : randomJson(rng),
            ),
          ),
          'application/json',
        ),
        note: 'batch',
      };
    case 8: {
      const method = rng.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'GET', 'HEAD']);
      const query = encodeURIComponent(rng.chance(0.5) ? randomQuery(rng).slice(0, 2_000) : CAST_VOTE);
      const variables = rng.chance(0.5) ? `&variables=${encodeURIComponent(rng.text(rng.int(100)))}` : '';
      return {
        url: `${url}/graphql?query=${query}${variables}`,
        init: { method, headers },
        note: `${method} with query string`,
      };
    }
    case 9: {
      const path = rng.pick([
        '/',
        '/graphql/',
        '/graphql/stream/x',
        '/health?x=1',
        '/ready/',
        '/%ff',
        '/..%2f..%2fetc/passwd',
        `/${'a'.repeat(rng.int(6_000))}`,
        '/graphql?%%%',
      ]);
      return {
        url: `${url}${path}`,
        init: { method: rng.pick(['GET', 'POST']), headers },
        note: `path ${path.slice(0, 30)}`,
      };
    }
    case 10:
      return {
        ...post(
          `mutation { castVote(input: {competitionId: "${competitionId}", submissionId: "nope"}) { vote { id } } }`,
          'application/graphql',
        ),
        note: 'application/graphql castVote',
      };
    default:
      return {
        ...post(
          new URLSearchParams({ query: randomQuery(rng), variables: rng.text(20) }).toString(),
          'application/x-www-form-urlencoded',
        ),
        note: 'form',
      };
  }
}

it('survives malformed HTTP, SSE and WebSocket input without a 5xx, a crash or a partial write', async () => {
  const rng = prng(SEED);
  const before = await rowCounts();
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const note = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);

  // ---------------------------------------------------------------- HTTP
  const httpCases = Array.from({ length: HTTP_REQUESTS }, () => httpCase(rng, server.url));
  // A few bodies over MAX_REQUEST_BODY_BYTES (1 MiB), each made when sent.
  for (let i = 0; i < 5; i += 1) {
    httpCases[rng.int(httpCases.length)] = {
      url: `${server.url}/graphql`,
      init: { method: 'POST', headers: { 'content-type': 'application/json' } },
      note: 'huge body',
    };
  }
  await pool(httpCases.length, async (i) => {
    const c = httpCases[i]!;
    const init =
      c.note === 'huge body'
        ? { ...c.init, body: JSON.stringify({ query: `{ __typename } #${'x'.repeat(1_200_000 + i)}` }) }
        : c.init;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('no answer within 10 s')), 10_000);
    try {
      const response = await fetch(c.url, { ...init, signal: controller.signal });
      if (/text\/event-stream|multipart\/mixed/.test(response.headers.get('content-type') ?? '')) {
        // A valid subscription that the Accept header asked to stream: live until we leave.
        setTimeout(() => controller.abort(), 100);
        await response.arrayBuffer().catch(() => undefined);
      } else {
        await response.arrayBuffer();
      }
      note(response.status);
      if (response.status >= 500) failures.push(`HTTP ${response.status} for ${c.note}`);
      if (c.note === 'huge body' && response.status !== 413) failures.push(`huge body answered ${response.status}`);
    } catch (error) {
      failures.push(`HTTP request failed (${c.note}): ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  });

  // ---------------------------------------------------------------- SSE (both modes)
  await pool(SSE_REQUESTS, async (i) => {
    const abort = AbortSignal.timeout(400);
    const mode = i % 3;
    try {
      let response: Response;
      if (mode === 0) {
        // distinct connections: POST /graphql with Accept: text/event-stream
        const body = rng.chance(0.3)
          ? JSON.stringify({
              query: `subscription { tallyUpdated(competitionId: "${rng.chance(0.5) ? competitionId : rng.text(8)}") { seq totalVotes } }`,
            })
          : rng.chance(0.5)
            ? JSON.stringify({ query: randomQuery(rng), variables: randomJson(rng) })
            : new Uint8Array(rng.bytes(rng.int(500)));
        response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: {
            accept: 'text/event-stream',
            'content-type': rng.pick(CONTENT_TYPES) || 'application/json',
            ...(rng.chance(0.3) && { authorization: `Bearer ${voterToken}` }),
          },
          body,
          signal: abort,
        });
      } else if (mode === 1) {
        // single connection: reserve, then send operations with a good or bad token
        const reserve = await fetch(`${server.url}/graphql/stream`, {
          method: rng.pick(['PUT', 'PUT', 'GET', 'DELETE', 'PATCH']),
          signal: abort,
        });
        const token = reserve.status === 201 ? await reserve.text() : (await reserve.arrayBuffer(), rng.text(16));
        note(reserve.status);
        if (reserve.status >= 500) failures.push(`SSE reserve answered ${reserve.status}`);
        response = await fetch(`${server.url}/graphql/stream`, {
          method: 'POST',
          headers: {
            'content-type': rng.pick(CONTENT_TYPES) || 'application/json',
            'x-graphql-event-stream-token': rng.chance(0.7) ? token : rng.text(30),
          },
          body: rng.chance(0.5)
            ? JSON.stringify({ query: randomQuery(rng), variables: randomJson(rng), extensions: randomJson(rng) })
            : new Uint8Array(rng.bytes(rng.int(300))),
          signal: abort,
        });
      } else {
        const query = rng.chance(0.5)
          ? `?token=${encodeURIComponent(rng.text(20))}`
          : `?query=${encodeURIComponent(randomQuery(rng).slice(0, 1_000))}`;
        response = await fetch(`${server.url}/graphql/stream${query}`, {
          headers: { accept: 'text/event-stream' },
          signal: abort,
        });
      }
      note(response.status);
      if (response.status >= 500) failures.push(`SSE ${response.status} (mode ${mode})`);
      await response.arrayBuffer().catch(() => undefined); // live streams end with the abort
    } catch (error) {
      if ((error as Error).name !== 'TimeoutError' && (error as Error).name !== 'AbortError')
        failures.push(`SSE request failed: ${(error as Error).message}`);
    }
  });

  // ---------------------------------------------------------------- WebSocket
  const closeCodes = new Map<number, number>();
  const ALLOWED_CLOSE = new Set([1000, 1005, 1007, 1009, 4400, 4401, 4403, 4406, 4408, 4409, 4429]);
  const wsFrame = (rng: Rng, ids: string[]): string | Buffer => {
    const id = ids.length > 0 && rng.chance(0.3) ? rng.pick(ids) : rng.text(1 + rng.int(6));
    switch (rng.int(12)) {
      case 0:
        return JSON.stringify({
          type: 'connection_init',
          payload: rng.chance(0.5) ? { authorization: `Bearer ${voterToken}` } : randomJson(rng),
        });
      case 1:
        ids.push(id);
        return JSON.stringify({
          type: 'subscribe',
          id,
          payload: { query: randomQuery(rng), variables: randomJson(rng) },
        });
      case 2:
        ids.push(id);
        return JSON.stringify({
          type: 'subscribe',
          id,
          payload: { query: CAST_VOTE, variables: invalidVoteVariables(rng) },
        });
      case 3:
        return JSON.stringify({ type: rng.pick(['complete', 'ping', 'pong']), id, payload: randomJson(rng) });
      case 4:
        return JSON.stringify({
          type: rng.pick(['next', 'error', 'connection_ack', 'ka', 'start', 'stop', 'connection_terminate', '']),
          id,
          payload: randomJson(rng),
        });
      case 5:
        return JSON.stringify(randomJson(rng));
      case 6:
        return rng.bytes(rng.int(200)); // sent as binary
      case 7:
        return JSON.stringify({
          type: 'subscribe',
          id,
          payload: { query: `{ __typename } #${'x'.repeat(WS_MAX_MESSAGE_BYTES)}` },
        });
      case 8:
        return JSON.stringify({
          type: 'subscribe',
          id: rng.pick<unknown>([1, null, {}, [], '']),
          payload: randomJson(rng),
        });
      case 9:
        return rng.text(rng.int(100));
      case 10:
        return JSON.stringify({
          type: 'subscribe',
          id,
          payload: { query: `subscription { tallyUpdated(competitionId: "${competitionId}") { seq } }` },
        });
      default:
        return Buffer.from([0x7b, 0xc3, 0x28, 0x7d]); // invalid UTF-8, sent as text
    }
  };
  await pool(WS_CONNECTIONS, async (i) => {
    const protocol = rng.chance(0.95) ? 'graphql-transport-ws' : undefined;
    const socket = protocol ? new WebSocket(`${server.wsUrl}`, protocol) : new WebSocket(server.wsUrl);
    const frames: { data: string | Buffer; binary: boolean }[] = [];
    const ids: string[] = [];
    if (rng.chance(0.7))
      frames.push({
        data: JSON.stringify({
          type: 'connection_init',
          payload: rng.chance(0.5) ? { authorization: `Bearer ${voterToken}` } : {},
        }),
        binary: false,
      });
    for (let n = 1 + rng.int(8); n > 0; n -= 1) {
      const data = wsFrame(rng, ids);
      frames.push({ data, binary: Buffer.isBuffer(data) && data[0] !== 0x7b });
    }
    const code = await new Promise<number>((resolve) => {
      let done = false;
      const finish = (c: number) => {
        if (!done) {
          done = true;
          resolve(c);
        }
      };
      socket.on('error', () => undefined);
      socket.on('close', (c) => finish(c));
      socket.on('open', async () => {
        for (const frame of frames) {
          if (socket.readyState !== WebSocket.OPEN) return;
          socket.send(frame.data, { binary: frame.binary });
          await new Promise((r) => setTimeout(r, rng.int(5)));
        }
        setTimeout(() => socket.close(1000), 50 + (i % 5) * 20);
      });
      setTimeout(() => {
        socket.terminate();
        finish(-1);
      }, 5_000);
    });
    closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
    if (!ALLOWED_CLOSE.has(code)) failures.push(`WebSocket closed with ${code}`);
  });

  // ---------------------------------------------------------------- afterwards
  const context = `seed ${SEED}; HTTP/SSE statuses ${JSON.stringify([...statuses].sort())}; WS close codes ${JSON.stringify([...closeCodes].sort())}`;
  const distinct = new Map<string, number>();
  for (const failure of failures) distinct.set(failure, (distinct.get(failure) ?? 0) + 1);
  expect(Object.fromEntries(distinct), context).toEqual({});
  expect((await fetch(`${server.url}/health`)).status).toBe(200);
  expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  expect(await rowCounts(), context).toEqual(before);
  // The server logged nothing as unexpected (an unmasked failure, an internal error on a socket).
  expect(server.output(), context).not.toMatch(
    /unexpected error|Internal error|Unexpected error while handling request|uncaught/i,
  );
  // And still does its job.
  const token = await tokenFor({ sub: 'after-fuzz' });
  dataOf(
    await execute(
      fetch,
      server.graphqlUrl,
      CastVoteDocument,
      { input: { competitionId, submissionId: submissionIds[0]! } },
      token,
    ),
  );
  expect(await rowCounts()).toEqual({ votes: before.votes + 1, ballots: before.ballots + 1 });
  // Plenty of every kind actually happened.
  expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThan(3);
  expect([...closeCodes.keys()].length).toBeGreaterThan(3);
}, 120_000);
