/**
 * graphql-sse on /graphql/stream (src/transport/graphql-sse-protocol.ts over Yoga's pipeline):
 * - graphql-sse's own client, single-connection and distinct, for queries, mutations and
 *   subscriptions;
 * - resume: in single-connection mode each `next` carries the stream's cursor map as its `id:`, and
 *   a new stream opened with it as `Last-Event-ID` resumes every re-posted operation exactly (no
 *   duplicate, no gap); in distinct mode (and on Yoga's /graphql, also as a GET the way a browser's
 *   EventSource asks) the id is the seq and Last-Event-ID resumes as afterSeq would. Both backends;
 * - the protocol's answers: reservations, 404/405/406/409, request errors masked (400/401) before a
 *   stream starts, DELETE, operations posted before the stream connects, the per-stream cap, a
 *   stream's end releasing its operations, shared results written once for every stream.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createClient } from 'graphql-sse';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  ChannelEventDocument,
  ChannelEventsDocument,
  DisableUserDocument,
  EnableUserDocument,
  PublishToChannelDocument,
} from '../generated/graphql.js';
import { openCompetition } from '../e2e/support.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends, postgresRedis, postgresRedisCluster, redisFor } from '../support/backends.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { readSse, type SseFrame, type SseReader } from '../support/sse-frames.js';

const TOKEN_HEADER = 'x-graphql-event-stream-token';
let serial = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(serial += 1)}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A reservation (PUT): its token. */
async function reserve(t: TestApp): Promise<string> {
  const response = await fetch(`${t.url}/graphql/stream`, { method: 'PUT' });
  expect(response.status).toBe(201);
  return response.text();
}

interface OpenStream {
  token: string;
  response: Response;
  reader: SseReader;
  close(): void;
}

async function openStream(t: TestApp, token: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const abort = new AbortController();
  const response = await fetch(`${t.url}/graphql/stream`, {
    headers: { accept: 'text/event-stream', [TOKEN_HEADER]: token, ...headers },
    signal: abort.signal,
  });
  return { token, response, reader: readSse(response), close: () => abort.abort() };
}

function postOperation<V>(
  t: TestApp,
  token: string | undefined,
  operationId: string | undefined,
  document: TypedDocumentNode<unknown, V> | string,
  variables?: V,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${t.url}/graphql/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== undefined && { [TOKEN_HEADER]: token }), ...headers },
    body: JSON.stringify({
      query: typeof document === 'string' ? document : print(document),
      variables,
      extensions: operationId === undefined ? {} : { operationId },
    }),
  });
}

/** A `next` frame of single-connection mode: `{ id, payload }`. */
const payloadOf = (frame: SseFrame) =>
  JSON.parse(frame.data!) as {
    id: string;
    payload: { data?: Record<string, { seq: number }> | null; errors?: { extensions?: Record<string, unknown> }[] };
  };
const isNextFor = (operationId: string) => (frame: SseFrame) =>
  frame.event === 'next' && payloadOf(frame).id === operationId;
const isCompleteFor = (operationId: string) => (frame: SseFrame) =>
  frame.event === 'complete' && (JSON.parse(frame.data!) as { id: string }).id === operationId;

/** The id line our contract promises: `<opId>:<seq>` entries, percent-encoded ids, in first-seen order. */
const cursorLine = (cursors: Map<string, number>) =>
  [...cursors].map(([id, seq]) => `${encodeURIComponent(id)}:${seq}`).join(',');

const errorBody = async (response: Response) =>
  (await response.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };

describe.each(backends)('resume over graphql-sse on $name', (backend) => {
  let infra: Awaited<ReturnType<typeof backend.start>>;
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    infra = await backend.start();
    t = await startTestApp(infra.env);
    admin = await tokenFor({ sub: 'gsse-admin', role: 'ADMIN' });
  });
  afterAll(async () => {
    await t?.stop();
    await infra?.stop();
  });

  const publish = async (channel: string, n: number) => {
    for (let i = 0; i < n; i += 1)
      dataOf(await execute(fetch, t.graphqlUrl, PublishToChannelDocument, { channel, type: 'tick', data: {} }, admin));
  };

  it('single connection: ids carry every operation’s cursor; a new stream with that Last-Event-ID resumes each re-posted operation exactly', async () => {
    const [scores, news] = [`app:${unique('scores')}`, `app:${unique('news')}`];
    // Operation ids with both separators of the id format in them: they travel percent-encoded.
    const [scoresOp, newsOp] = ['scores:1', 'news,2'];
    await publish(scores, 2);
    await publish(news, 2);

    const first = await openStream(t, await reserve(t));
    expect(first.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(
      (await postOperation(t, first.token, scoresOp, ChannelEventDocument, { channel: scores, afterSeq: 0 })).status,
    ).toBe(202);
    await first.reader.waitFor((f) => isNextFor(scoresOp)(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 2);
    expect(
      (await postOperation(t, first.token, newsOp, ChannelEventDocument, { channel: news, afterSeq: 0 })).status,
    ).toBe(202);
    await first.reader.waitFor((f) => isNextFor(newsOp)(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 2);
    await publish(scores, 1);
    const last = await first.reader.waitFor(
      (f) => isNextFor(scoresOp)(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 3,
    );
    expect(first.reader.frames.filter((f) => f.event === 'next').map((f) => f.id)).toEqual([
      'scores%3A1:1',
      'scores%3A1:2',
      'scores%3A1:2,news%2C2:1',
      'scores%3A1:2,news%2C2:2',
      'scores%3A1:3,news%2C2:2',
    ]);
    first.close();

    // Missed while disconnected:
    await publish(scores, 1); // 4
    await publish(news, 2); // 3, 4

    const second = await openStream(t, await reserve(t), { 'last-event-id': last.id! });
    expect(second.response.status).toBe(200);
    // The client repeats its operations as it first sent them (afterSeq 0): the stream's cursors win.
    for (const [op, channel] of [
      [scoresOp, scores],
      [newsOp, news],
    ] as const) {
      expect((await postOperation(t, second.token, op, ChannelEventDocument, { channel, afterSeq: 0 })).status).toBe(
        202,
      );
    }
    await second.reader.waitFor(
      (f) => isNextFor(scoresOp)(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 4,
    );
    await second.reader.waitFor((f) => isNextFor(newsOp)(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 4);
    await publish(scores, 1); // 5, live
    await second.reader.waitFor(
      (f) => isNextFor(scoresOp)(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 5,
    );
    const nexts = second.reader.frames.filter((f) => f.event === 'next');
    const seqs = (op: string) =>
      nexts.filter(isNextFor(op)).map((f) => payloadOf(f).payload.data?.['channelEvent']?.seq);
    expect(seqs(scoresOp)).toEqual([4, 5]);
    expect(seqs(newsOp)).toEqual([3, 4]);
    // Every id is the map after its event, starting from the seeded one (both entries from the first event on).
    const cursors = new Map([
      [scoresOp, 3],
      [newsOp, 2],
    ]);
    for (const frame of nexts) {
      const { id, payload } = payloadOf(frame);
      cursors.set(id, payload.data!['channelEvent']!.seq);
      expect(frame.id).toBe(cursorLine(cursors));
    }
    second.close();
  });

  it.each([
    ['POST', '/graphql/stream'],
    ['GET', '/graphql/stream'],
    ['GET', '/graphql'],
  ])('distinct connection (%s %s): id is the seq; Last-Event-ID resumes after it', async (method, path) => {
    const channel = `app:${unique('distinct')}`;
    await publish(channel, 3);
    const query = print(ChannelEventDocument);
    const variables = { channel }; // no afterSeq: what an EventSource repeats on every reconnect
    const url =
      method === 'GET'
        ? `${t.url}${path}?query=${encodeURIComponent(query)}&variables=${encodeURIComponent(JSON.stringify(variables))}`
        : `${t.url}${path}`;
    const abort = new AbortController();
    // What a browser's EventSource sends when it reconnects after the event with id 1.
    const response = await fetch(url, {
      method,
      signal: abort.signal,
      headers: {
        accept: 'text/event-stream',
        'cache-control': 'no-cache',
        'last-event-id': '1',
        ...(method === 'POST' && { 'content-type': 'application/json' }),
      },
      ...(method === 'POST' && { body: JSON.stringify({ query, variables }) }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = readSse(response);
    await reader.waitFor((f) => f.id === '3');
    await publish(channel, 1);
    await reader.waitFor((f) => f.id === '4');
    abort.abort();
    expect(
      reader.nexts<{ data: { channelEvent: { seq: number } } }>().map((e) => [e.id, e.data.data.channelEvent.seq]),
    ).toEqual([
      ['2', 2],
      ['3', 3],
      ['4', 4],
    ]);
  });
});

const MAX_OPERATIONS = 3;
const RESERVATION_TTL_MS = 3_000;
const TALLY = 'subscription ($id: ID!) { tallyUpdated(competitionId: $id) { seq totalVotes } }';
const CHANNEL_EVENT = print(ChannelEventDocument);

/** DELETE of an operation id nobody posted: 200 while the reservation is known, 404 once it is not. */
const probe = (t: TestApp, token: string) =>
  fetch(`${t.url}/graphql/stream?operationId=probe`, { method: 'DELETE', headers: { [TOKEN_HEADER]: token } }).then(
    (r) => r.status,
  );

describe.each(backends)('graphql-sse protocol on $name', (backend) => {
  let infra: Awaited<ReturnType<typeof backend.start>>;
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    infra = await backend.start();
    t = await startTestApp({
      ...infra.env,
      MAX_SUBSCRIPTIONS_PER_CONNECTION: String(MAX_OPERATIONS),
      GRAPHQL_SSE_RESERVATION_TTL_MS: String(RESERVATION_TTL_MS),
    });
    admin = await tokenFor({ sub: 'gsse-protocol-admin', role: 'ADMIN' });
  });
  afterAll(async () => {
    await t?.stop();
    await infra?.stop();
  });

  it.each([true, false])(
    'graphql-sse’s client (singleConnection: %s): a query, a mutation and a subscription',
    async (singleConnection) => {
      const { competitionId, submissionIds } = await openCompetition(t.graphqlUrl, 1);
      const client = createClient({
        url: `${t.url}/graphql/stream`,
        singleConnection,
        retryAttempts: 0,
        headers: { authorization: `Bearer ${admin}` },
      });
      try {
        const all = async <T>(request: { query: string; variables?: Record<string, unknown> }) => {
          const results: T[] = [];
          for await (const result of client.iterate<T>(request)) results.push(result as T);
          return results;
        };
        expect(await all({ query: '{ __typename }' })).toEqual([{ data: { __typename: 'Query' } }]);
        const channel = `app:${unique('client')}`;
        expect(
          await all({ query: print(PublishToChannelDocument), variables: { channel, type: 'tick', data: { n: 1 } } }),
        ).toMatchObject([{ data: { publishToChannel: { seq: 1, type: 'tick' } } }]);
        const tally = client.iterate<{ tallyUpdated: { totalVotes: number } }>({
          query: TALLY,
          variables: { id: competitionId },
        });
        expect((await tally.next()).value).toMatchObject({ data: { tallyUpdated: { totalVotes: 0 } } });
        dataOf(
          await execute(
            fetch,
            t.graphqlUrl,
            CastVoteDocument,
            { input: { competitionId, submissionId: submissionIds[0]! } },
            await tokenFor({ sub: unique('voter') }),
          ),
        );
        expect((await tally.next()).value).toMatchObject({ data: { tallyUpdated: { totalVotes: 1 } } });
        await tally.return?.();
      } finally {
        client.dispose();
      }
    },
  );

  it('runs operations posted before the stream connects, and shares one tally execution among streams, each frame with its operation’s cursor', async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    const [tokenA, tokenB] = [await reserve(t), await reserve(t)];
    // Streaming to a reservation that is not connected yet is allowed: it waits for the stream.
    expect((await postOperation(t, tokenA, 'tally', TALLY, { id: competitionId })).status).toBe(202);
    const a = await openStream(t, tokenA);
    const b = await openStream(t, tokenB);
    expect((await postOperation(t, tokenB, 'mine', TALLY, { id: competitionId })).status).toBe(202);
    const [fa, fb] = await Promise.all([a.reader.waitFor(isNextFor('tally')), b.reader.waitFor(isNextFor('mine'))]);
    expect(t.app.sharedSubscriptions.stats()).toEqual({ streams: 1, subscribers: 2 });
    const seq = payloadOf(fa).payload.data!['tallyUpdated']!.seq;
    expect(fa.id).toBe(`tally:${seq}`);
    expect(fb.id).toBe(`mine:${payloadOf(fb).payload.data!['tallyUpdated']!.seq}`);
    expect(a.reader.frames[0]).toEqual({ comment: true });
    a.close();
    b.close();
    // A stream's end ends its operations (and its reservation).
    await expect
      .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
      .toEqual({ streams: 0, subscribers: 0 });
    expect((await postOperation(t, tokenA, 'again', '{ __typename }')).status).toBe(404);
  });

  it('an operation whose stream closes while its body is still arriving does not run (404)', async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    const stream = await openStream(t, await reserve(t));
    await stream.reader.waitFor((f) => f.comment);
    const body = Buffer.from(
      JSON.stringify({ query: TALLY, variables: { id: competitionId }, extensions: { operationId: 'late' } }),
    );
    const { request } = await import('node:http');
    const answered = new Promise<number>((resolve, reject) => {
      const req = request(
        `${t.url}/graphql/stream`,
        {
          agent: false,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': body.length, [TOKEN_HEADER]: stream.token },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, 10));
      req.once('socket', (socket) =>
        socket.once('connect', async () => {
          stream.close();
          // The reservation is gone once the server saw the stream close.
          await expect
            .poll(
              async () =>
                (
                  await fetch(`${t.url}/graphql/stream?operationId=x`, {
                    method: 'DELETE',
                    headers: { [TOKEN_HEADER]: stream.token },
                  })
                ).status,
              { timeout: 5_000 },
            )
            .toBe(404);
          req.end(body.subarray(10));
        }),
      );
    });
    expect(await answered).toBe(404);
    expect(t.app.sharedSubscriptions.stats()).toEqual({ streams: 0, subscribers: 0 });
  });

  it('DELETE stops one operation (no more events, no complete); its id is free again; a query gets next then complete', async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    const stream = await openStream(t, await reserve(t));
    const token = stream.token;
    expect((await postOperation(t, token, 'watch', TALLY, { id: competitionId })).status).toBe(202);
    await stream.reader.waitFor(isNextFor('watch'));
    expect(t.app.sharedSubscriptions.stats().subscribers).toBe(1);
    const deleted = await fetch(`${t.url}/graphql/stream?operationId=watch`, {
      method: 'DELETE',
      headers: { [TOKEN_HEADER]: token },
    });
    expect(deleted.status).toBe(200);
    await expect
      .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
      .toEqual({ streams: 0, subscribers: 0 });
    expect((await postOperation(t, token, 'q', '{ __typename }')).status).toBe(202);
    const answer = await stream.reader.waitFor(isNextFor('q'));
    expect(payloadOf(answer).payload).toEqual({ data: { __typename: 'Query' } });
    await stream.reader.waitFor(isCompleteFor('q'));
    expect(stream.reader.frames.some(isCompleteFor('watch'))).toBe(false);
    expect((await postOperation(t, token, 'watch', TALLY, { id: competitionId })).status).toBe(202);
    await expect.poll(() => stream.reader.frames.filter(isNextFor('watch')).length).toBe(2);
    stream.close();
  });

  it(`refuses operation ${MAX_OPERATIONS + 1} in flight on one stream with RATE_LIMITED, then complete; the stream goes on`, async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    const stream = await openStream(t, await reserve(t));
    for (let i = 0; i < MAX_OPERATIONS; i += 1)
      expect((await postOperation(t, stream.token, `op${i}`, TALLY, { id: competitionId })).status).toBe(202);
    expect((await postOperation(t, stream.token, 'one-more', TALLY, { id: competitionId })).status).toBe(202);
    const refused = await stream.reader.waitFor(isNextFor('one-more'));
    expect(payloadOf(refused).payload).toMatchObject({
      data: null,
      errors: [{ extensions: { code: 'RATE_LIMITED', rule: 'subscriptionsPerConnection', limit: MAX_OPERATIONS } }],
    });
    await stream.reader.waitFor(isCompleteFor('one-more'));
    for (let i = 0; i < MAX_OPERATIONS; i += 1) await stream.reader.waitFor(isNextFor(`op${i}`));
    stream.close();
  });

  it('a mutation sent with GET is refused (405) and not run', async () => {
    const channel = `app:${unique('get-mutation')}`;
    const query = `mutation { publishToChannel(channel: "${channel}", type: "x") { seq } }`;
    const response = await fetch(`${t.url}/graphql/stream?query=${encodeURIComponent(query)}`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${admin}` },
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect((await errorBody(response)).errors[0]).toEqual({
      message: 'Can only perform a mutation operation from a POST request.',
      extensions: { code: 'BAD_USER_INPUT', retryable: false, reason: 'BAD_REQUEST' },
    });
    expect(dataOf(await execute(fetch, t.graphqlUrl, ChannelEventsDocument, { channel })).channelEvents.latestSeq).toBe(
      0,
    );
  });

  type Case = [name: string, status: number, code: string | null, request: () => Promise<Response>];
  const cases: Case[] = [
    [
      'an operation for an unknown token',
      404,
      'NOT_FOUND',
      () => postOperation(t, 'no-such-token', 'a', '{ __typename }'),
    ],
    [
      'a stream for an unknown token',
      404,
      'NOT_FOUND',
      () => fetch(`${t.url}/graphql/stream?token=no-such-token`, { headers: { accept: 'text/event-stream' } }),
    ],
    ['an operation without a token', 404, 'NOT_FOUND', () => postOperation(t, undefined, 'a', '{ __typename }')],
    [
      'DELETE for an unknown token',
      404,
      'NOT_FOUND',
      () => fetch(`${t.url}/graphql/stream?operationId=a`, { method: 'DELETE', headers: { [TOKEN_HEADER]: 'nope' } }),
    ],
    ['PATCH', 405, 'BAD_USER_INPUT', () => fetch(`${t.url}/graphql/stream`, { method: 'PATCH' })],
    [
      'PUT asking for JSON',
      406,
      null,
      () => fetch(`${t.url}/graphql/stream`, { method: 'PUT', headers: { accept: 'application/json' } }),
    ],
    [
      'an operation asking for HTML',
      406,
      null,
      async () => postOperation(t, await reserve(t), 'a', '{ __typename }', undefined, { accept: 'text/html' }),
    ],
    [
      'an operation without operationId',
      400,
      'BAD_USER_INPUT',
      async () => postOperation(t, await reserve(t), undefined, '{ __typename }'),
    ],
    [
      'an operation whose operationId is an object',
      400,
      'BAD_USER_INPUT',
      async () =>
        fetch(`${t.url}/graphql/stream`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: await reserve(t) },
          body: JSON.stringify({ query: '{ __typename }', extensions: { operationId: { id: 'a' } } }),
        }),
    ],
    ['a syntax error', 400, 'BAD_USER_INPUT', async () => postOperation(t, await reserve(t), 'a', '{')],
    ['a validation error', 400, 'BAD_USER_INPUT', async () => postOperation(t, await reserve(t), 'a', '{ nope }')],
    [
      'a body that is not JSON',
      400,
      'BAD_USER_INPUT',
      async () =>
        fetch(`${t.url}/graphql/stream`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: await reserve(t) },
          body: '{',
        }),
    ],
    [
      'a form body',
      415,
      'BAD_USER_INPUT',
      async () =>
        fetch(`${t.url}/graphql/stream`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain', [TOKEN_HEADER]: await reserve(t) },
          body: 'query={}',
        }),
    ],
    [
      'a bad token',
      401,
      'UNAUTHENTICATED',
      async () =>
        postOperation(t, await reserve(t), 'a', '{ __typename }', undefined, { authorization: 'Bearer not-a-jwt' }),
    ],
    [
      'a distinct stream with a syntax error',
      400,
      'BAD_USER_INPUT',
      () =>
        fetch(`${t.url}/graphql/stream?query=${encodeURIComponent('{')}`, { headers: { accept: 'text/event-stream' } }),
    ],
    [
      'a distinct stream with a bad Last-Event-ID',
      400,
      'BAD_USER_INPUT',
      () =>
        fetch(`${t.url}/graphql/stream?query=${encodeURIComponent('{ __typename }')}`, {
          headers: { accept: 'text/event-stream', 'last-event-id': 'a:1' },
        }),
    ],
    ...['5', 'a', 'a:', ':1', 'a:1,a:2', 'a:99999999999', '%E0%A4%A:1', 'a:1,b:2,c:3,d:4'].map((id): Case => [
      `a single-connection stream with Last-Event-ID ${id}`,
      400,
      'BAD_USER_INPUT',
      async () =>
        fetch(`${t.url}/graphql/stream`, {
          headers: { accept: 'text/event-stream', [TOKEN_HEADER]: await reserve(t), 'last-event-id': id },
        }),
    ]),
  ];
  it.each(cases)('answers %s with %i before anything starts', async (_name, status, code, request) => {
    const response = await request();
    expect(response.status).toBe(status);
    const text = await response.text();
    if (code === null) return;
    const { errors } = JSON.parse(text) as { errors: { extensions: Record<string, unknown> }[] };
    expect(errors[0]!.extensions).toMatchObject({ code, retryable: false });
    expect(text).not.toMatch(/"http"|stack| {4}at /);
  });

  it('a stream request with a bad or expired token is refused (401) before it starts; its reservation stays for a retry', async () => {
    const token = await reserve(t);
    for (const bad of ['Bearer not-a-jwt', `Bearer ${await tokenFor({ sub: unique('late') }, nowSeconds() - 60)}`]) {
      const refused = await fetch(`${t.url}/graphql/stream`, {
        headers: { accept: 'text/event-stream', [TOKEN_HEADER]: token, authorization: bad },
      });
      expect(refused.status).toBe(401);
      expect((await errorBody(refused)).errors[0]!.extensions).toMatchObject({
        code: 'UNAUTHENTICATED',
        retryable: false,
      });
    }
    const stream = await openStream(t, token, { authorization: `Bearer ${admin}` });
    expect(stream.response.status).toBe(200);
    stream.close();
  });

  it('tokens end what they opened at their exp: a stream’s token the stream (each operation: UNAUTHENTICATED, complete), an operation’s token that operation, a distinct stream’s token that stream', async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    // Far enough ahead that a loaded machine has subscribed before the tokens expire.
    const exp = nowSeconds() + 3;
    const short = async (sub = unique('expiring')) => `Bearer ${await tokenFor({ sub }, exp)}`;
    const expired = {
      errors: [{ message: 'token expired', extensions: { code: 'UNAUTHENTICATED', retryable: false } }],
    };
    const lastOf = (frames: SseFrame[], id: string) =>
      frames.filter((f) => isNextFor(id)(f) || isCompleteFor(id)(f)).slice(-2);

    // A: the stream's own token expires; its operations carry a longer one of the same user, or none.
    const streamUser = unique('expiring');
    const a = await openStream(t, await reserve(t), { authorization: await short(streamUser) });
    expect(a.response.status).toBe(200);
    const longer = `Bearer ${await tokenFor({ sub: streamUser })}`;
    expect(
      (await postOperation(t, a.token, 'long', TALLY, { id: competitionId }, { authorization: longer })).status,
    ).toBe(202);
    expect((await postOperation(t, a.token, 'anonymous', TALLY, { id: competitionId })).status).toBe(202);
    // B: a stream without a token; one operation's own token expires, the other operation has none.
    const b = await openStream(t, await reserve(t));
    expect(
      (await postOperation(t, b.token, 'short', TALLY, { id: competitionId }, { authorization: await short() })).status,
    ).toBe(202);
    expect((await postOperation(t, b.token, 'other', TALLY, { id: competitionId })).status).toBe(202);
    // C: distinct-connection mode.
    const abort = new AbortController();
    const c = readSse(
      await fetch(
        `${t.url}/graphql/stream?query=${encodeURIComponent(TALLY)}&variables=${encodeURIComponent(JSON.stringify({ id: competitionId }))}`,
        {
          headers: { accept: 'text/event-stream', authorization: await short() },
          signal: abort.signal,
        },
      ),
    );
    await Promise.all([
      ...['long', 'anonymous'].map((id) => a.reader.waitFor(isNextFor(id))),
      ...['short', 'other'].map((id) => b.reader.waitFor(isNextFor(id))),
      c.waitFor((f) => f.event === 'next'),
    ]);

    // When each ended; a stream still open 5 s after exp fails the test.
    const endedAt = (ending: Promise<unknown>) =>
      Promise.race([
        ending.then(() => Date.now()),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('still open 5 s after exp')), exp * 1000 + 5_000 - Date.now()).unref(),
        ),
      ]);
    const [aEnded, bShortEnded, cEnded] = await Promise.all([
      endedAt(a.reader.ended),
      endedAt(b.reader.waitFor(isCompleteFor('short'))),
      endedAt(c.ended),
    ]);
    for (const at of [aEnded, bShortEnded, cEnded]) {
      expect(at).toBeGreaterThanOrEqual(exp * 1000 - 50);
      expect(at).toBeLessThan(exp * 1000 + 1500);
    }
    for (const [frames, id] of [
      [a.reader.frames, 'long'],
      [a.reader.frames, 'anonymous'],
      [b.reader.frames, 'short'],
    ] as const) {
      const [last, complete] = lastOf(frames, id);
      expect(payloadOf(last!).payload).toMatchObject(expired);
      expect(isCompleteFor(id)(complete!)).toBe(true);
    }
    expect(c.nexts().at(-1)?.data).toMatchObject(expired);
    expect(c.frames.at(-1)?.event).toBe('complete');
    // A's reservation ended with it; B and its other operation go on.
    expect(await probe(t, a.token)).toBe(404);
    expect(b.reader.frames.some(isCompleteFor('other'))).toBe(false);
    expect((await postOperation(t, b.token, 'q', '{ __typename }')).status).toBe(202);
    await b.reader.waitFor(isCompleteFor('q'));
    b.close();
    abort.abort();
    await expect
      .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
      .toEqual({ streams: 0, subscribers: 0 });
  });

  it('a stream ends when its token is revoked (disableUser), like at its exp: each operation UNAUTHENTICATED, then complete', async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    const userId = unique('revoked');
    const token = `Bearer ${await tokenFor({ sub: userId })}`;
    const stream = await openStream(t, await reserve(t), { authorization: token });
    expect(stream.response.status).toBe(200);
    expect((await postOperation(t, stream.token, 'tally', TALLY, { id: competitionId })).status).toBe(202);
    await stream.reader.waitFor(isNextFor('tally'));
    dataOf(await execute(fetch, t.graphqlUrl, DisableUserDocument, { userId }, admin));
    try {
      await Promise.race([
        stream.reader.ended,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('still open 5 s after the revocation')), 5_000).unref(),
        ),
      ]);
      const [last, complete] = stream.reader.frames
        .filter((f) => isNextFor('tally')(f) || isCompleteFor('tally')(f))
        .slice(-2);
      expect(payloadOf(last!).payload).toMatchObject({
        errors: [{ message: 'account disabled', extensions: { code: 'UNAUTHENTICATED', retryable: false } }],
      });
      expect(isCompleteFor('tally')(complete!)).toBe(true);
      expect(await probe(t, stream.token)).toBe(404); // its reservation ended with it
    } finally {
      dataOf(await execute(fetch, t.graphqlUrl, EnableUserDocument, { userId }, admin));
      stream.close();
    }
  });

  it('one stream, one user: an operation with another user’s token is FORBIDDEN (403), on a signed-in stream and on an anonymous one its first token bound', async () => {
    const [owner, intruder] = [unique('owner'), unique('intruder')];
    const bearer = async (sub: string) => `Bearer ${await tokenFor({ sub })}`;
    const signedIn = await openStream(t, await reserve(t), { authorization: await bearer(owner) });
    const anonymous = await openStream(t, await reserve(t));
    try {
      const me = '{ me { id } }';
      const meOf = async (stream: OpenStream, id: string) =>
        payloadOf(await stream.reader.waitFor(isNextFor(id))).payload.data as unknown as { me: { id: string } | null };

      const refused = await postOperation(t, signedIn.token, 'x', me, undefined, {
        authorization: await bearer(intruder),
      });
      expect(refused.status).toBe(403);
      expect((await errorBody(refused)).errors[0]!.extensions).toMatchObject({ code: 'FORBIDDEN', retryable: false });
      expect(
        (await postOperation(t, signedIn.token, 'y', me, undefined, { authorization: await bearer(owner) })).status,
      ).toBe(202);
      expect(await meOf(signedIn, 'y')).toEqual({ me: { id: owner } });

      expect(
        (await postOperation(t, anonymous.token, 'a', me, undefined, { authorization: await bearer(owner) })).status,
      ).toBe(202);
      expect(await meOf(anonymous, 'a')).toEqual({ me: { id: owner } });
      expect(
        (await postOperation(t, anonymous.token, 'b', me, undefined, { authorization: await bearer(intruder) })).status,
      ).toBe(403);
      // Anonymous operations stay anonymous; the refused ones left nothing on the streams.
      expect((await postOperation(t, anonymous.token, 'c', me)).status).toBe(202);
      expect(await meOf(anonymous, 'c')).toEqual({ me: null });
      expect(signedIn.reader.frames.some(isNextFor('x'))).toBe(false);
      expect(anonymous.reader.frames.some(isNextFor('b'))).toBe(false);
    } finally {
      signedIn.close();
      anonymous.close();
    }
  });

  it('answers 409 for a second stream on one reservation and for an operation id in flight; PUT always makes a new token', async () => {
    const token = await reserve(t);
    const stream = await openStream(t, token);
    expect(stream.response.status).toBe(200);
    const again = await fetch(`${t.url}/graphql/stream`, {
      headers: { accept: 'text/event-stream', [TOKEN_HEADER]: token },
    });
    expect(again.status).toBe(409);
    expect((await errorBody(again)).errors[0]!.extensions['code']).toBe('CONFLICT');
    // graphql-sse's client sends its last token along when it reserves again.
    const fresh = await fetch(`${t.url}/graphql/stream`, { method: 'PUT', headers: { [TOKEN_HEADER]: token } });
    expect(fresh.status).toBe(201);
    expect(await fresh.text()).not.toBe(token);
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    expect((await postOperation(t, token, 'x', TALLY, { id: competitionId })).status).toBe(202);
    const duplicate = await postOperation(t, token, 'x', TALLY, { id: competitionId });
    expect(duplicate.status).toBe(409);
    expect((await errorBody(duplicate)).errors[0]!.extensions['code']).toBe('CONFLICT');
    stream.close();
  });

  it('forgets a reservation no stream connected to within GRAPHQL_SSE_RESERVATION_TTL_MS, and the operations queued on it; a connected stream stays', async () => {
    const channel = `app:${unique('expired')}`;
    const reservedAt = Date.now();
    const [expiring, connected] = [await reserve(t), await reserve(t)];
    const stream = await openStream(t, connected);
    // Queued until a stream connects: it never will.
    const mutation = `mutation { publishToChannel(channel: "${channel}", type: "never") { seq } }`;
    expect(
      (await postOperation(t, expiring, 'never', mutation, undefined, { authorization: `Bearer ${admin}` })).status,
    ).toBe(202);
    expect(await probe(t, expiring)).toBe(200);
    await expect.poll(() => probe(t, expiring), { timeout: RESERVATION_TTL_MS + 10_000, interval: 200 }).toBe(404);
    expect(Date.now() - reservedAt).toBeGreaterThanOrEqual(RESERVATION_TTL_MS - 50);
    expect((await openStream(t, expiring)).response.status).toBe(404);
    expect((await postOperation(t, expiring, 'late', '{ __typename }')).status).toBe(404);
    expect(dataOf(await execute(fetch, t.graphqlUrl, ChannelEventsDocument, { channel })).channelEvents.latestSeq).toBe(
      0,
    );
    // The stream reserved at the same moment outlived the TTL (Redis: its entry is refreshed while it lives).
    expect((await postOperation(t, connected, 'still', '{ __typename }')).status).toBe(202);
    await stream.reader.waitFor(isCompleteFor('still'));
    stream.close();
  });
});

// The relay between instances: PUBLISH/SUBSCRIBE on one Redis, SPUBLISH/SSUBSCRIBE on a cluster.
describe.each([postgresRedis, postgresRedisCluster])(
  'graphql-sse single-connection mode across two instances ($name)',
  (backend) => {
    let infra: Awaited<ReturnType<typeof backend.start>>;
    let a: TestApp;
    let b: TestApp;
    let admin: string;
    let redis: Redis | Cluster;

    beforeAll(async () => {
      infra = await backend.start();
      const env = {
        ...infra.env,
        MAX_SUBSCRIPTIONS_PER_CONNECTION: String(MAX_OPERATIONS),
        GRAPHQL_SSE_RESERVATION_TTL_MS: String(RESERVATION_TTL_MS),
      };
      a = await startTestApp(env);
      b = await startTestApp(env);
      admin = await tokenFor({ sub: 'gsse-two-admin', role: 'ADMIN' });
      redis = redisFor(infra.env);
    });
    afterAll(async () => {
      redis?.disconnect();
      await Promise.all([a?.stop(), b?.stop()]);
      await infra?.stop();
    });

    const subscribers = (t: TestApp) => t.app.sharedSubscriptions.stats().subscribers;

    it('stream on one instance, PUT and every operation on the other: results, 409s, the cap, request errors and DELETE as on one', async () => {
      const { competitionId } = await openCompetition(a.graphqlUrl, 1);
      const stream = await openStream(b, await reserve(a));
      expect(stream.response.status).toBe(200);
      const token = stream.token;
      expect((await postOperation(a, token, 'q', '{ __typename }')).status).toBe(202);
      expect(payloadOf(await stream.reader.waitFor(isNextFor('q'))).payload).toEqual({ data: { __typename: 'Query' } });
      await stream.reader.waitFor(isCompleteFor('q'));

      expect((await postOperation(a, token, 'watch', TALLY, { id: competitionId })).status).toBe(202);
      await stream.reader.waitFor(isNextFor('watch'));
      // It runs next to its stream, on b.
      expect([subscribers(a), subscribers(b)]).toEqual([0, 1]);
      for (const t of [a, b]) {
        const duplicate = await postOperation(t, token, 'watch', TALLY, { id: competitionId });
        expect(duplicate.status).toBe(409);
        expect((await errorBody(duplicate)).errors[0]!.extensions['code']).toBe('CONFLICT');
      }
      const refusals: [Promise<Response>, number, string][] = [
        [postOperation(a, token, 'syntax', '{'), 400, 'BAD_USER_INPUT'],
        [postOperation(a, token, undefined, '{ __typename }'), 400, 'BAD_USER_INPUT'],
        [
          postOperation(a, token, 'auth', '{ __typename }', undefined, { authorization: 'Bearer not-a-jwt' }),
          401,
          'UNAUTHENTICATED',
        ],
      ];
      for (const [response, status, code] of refusals) {
        const answer = await response;
        expect(answer.status).toBe(status);
        expect((await errorBody(answer)).errors[0]!.extensions).toMatchObject({ code, retryable: false });
      }
      expect((await postOperation(a, token, 'w2', TALLY, { id: competitionId })).status).toBe(202);
      expect((await postOperation(a, token, 'w3', TALLY, { id: competitionId })).status).toBe(202);
      expect((await postOperation(a, token, 'one-more', TALLY, { id: competitionId })).status).toBe(202);
      expect(payloadOf(await stream.reader.waitFor(isNextFor('one-more'))).payload).toMatchObject({
        errors: [{ extensions: { code: 'RATE_LIMITED', rule: 'subscriptionsPerConnection' } }],
      });
      await stream.reader.waitFor(isCompleteFor('one-more'));

      const deleted = await fetch(`${a.url}/graphql/stream?operationId=watch`, {
        method: 'DELETE',
        headers: { [TOKEN_HEADER]: token },
      });
      expect(deleted.status).toBe(200);
      await expect.poll(() => subscribers(b), { timeout: 5_000 }).toBe(2);
      expect(stream.reader.frames.some(isCompleteFor('watch'))).toBe(false);

      // The stream's end ends the operations posted through a; the token is then unknown everywhere.
      stream.close();
      await expect.poll(() => subscribers(b), { timeout: 5_000 }).toBe(0);
      await expect.poll(() => probe(a, token), { timeout: 5_000 }).toBe(404);
      expect((await postOperation(a, token, 'after', '{ __typename }')).status).toBe(404);
    });

    it('operations posted before the stream connects, on either instance, run next to it once it does, resumed from its Last-Event-ID', async () => {
      const channel = `app:${unique('queued')}`;
      for (let i = 0; i < 3; i += 1)
        dataOf(
          await execute(fetch, a.graphqlUrl, PublishToChannelDocument, { channel, type: 'tick', data: {} }, admin),
        );
      const token = await reserve(a);
      expect((await postOperation(a, token, 'events', CHANNEL_EVENT, { channel, afterSeq: 0 })).status).toBe(202);
      expect((await postOperation(b, token, 'query', '{ __typename }')).status).toBe(202);
      expect((await postOperation(a, token, 'dropped', '{ __typename }')).status).toBe(202);
      expect(
        (
          await fetch(`${b.url}/graphql/stream?operationId=dropped`, {
            method: 'DELETE',
            headers: { [TOKEN_HEADER]: token },
          })
        ).status,
      ).toBe(200);
      // Checked when posted: a repeat, a request error and one over the cap are answered at once.
      expect((await postOperation(b, token, 'events', CHANNEL_EVENT, { channel, afterSeq: 0 })).status).toBe(409);
      expect((await postOperation(b, token, 'syntax', '{')).status).toBe(400);
      expect((await postOperation(b, token, 'third', '{ __typename }')).status).toBe(202);
      const over = await postOperation(a, token, 'fourth', '{ __typename }');
      expect(over.status).toBe(429);
      expect((await errorBody(over)).errors[0]!.extensions).toMatchObject({
        code: 'RATE_LIMITED',
        rule: 'subscriptionsPerConnection',
        limit: MAX_OPERATIONS,
      });

      const stream = await openStream(b, token, { 'last-event-id': 'events:1' });
      expect(stream.response.status).toBe(200);
      await stream.reader.waitFor(
        (f) => isNextFor('events')(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 3,
      );
      await stream.reader.waitFor(isCompleteFor('query'));
      await stream.reader.waitFor(isCompleteFor('third'));
      const seqs = stream.reader.frames
        .filter(isNextFor('events'))
        .map((f) => payloadOf(f).payload.data?.['channelEvent']?.seq);
      expect(seqs).toEqual([2, 3]);
      expect(stream.reader.frames.some((f) => f.data?.includes('"dropped"'))).toBe(false);
      expect(subscribers(a)).toBe(0);
      stream.close();
    });

    it('the instance holding a stream stops: the stream ends without complete, and a new one elsewhere resumes from its Last-Event-ID', async () => {
      const channel = `app:${unique('holder')}`;
      const publish = async (n: number) => {
        for (let i = 0; i < n; i += 1)
          dataOf(
            await execute(fetch, a.graphqlUrl, PublishToChannelDocument, { channel, type: 'tick', data: {} }, admin),
          );
      };
      await publish(2);
      const c = await startTestApp({ ...infra.env, MAX_SUBSCRIPTIONS_PER_CONNECTION: String(MAX_OPERATIONS) });
      let first: OpenStream;
      try {
        first = await openStream(c, await reserve(a));
        expect((await postOperation(b, first.token, 'events', CHANNEL_EVENT, { channel, afterSeq: 0 })).status).toBe(
          202,
        );
        await first.reader.waitFor(
          (f) => isNextFor('events')(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 2,
        );
      } finally {
        await c.stop();
      }
      await first.reader.ended;
      const last = first.reader.frames.filter(isNextFor('events')).at(-1)!;
      expect(last.id).toBe('events:2');
      expect(first.reader.frames.some(isCompleteFor('events'))).toBe(false);
      // Its reservation went with it: the old token is unknown on every instance left.
      for (const t of [a, b])
        expect((await postOperation(t, first.token, 'events', CHANNEL_EVENT, { channel, afterSeq: 0 })).status).toBe(
          404,
        );

      await publish(1); // 3, missed
      // What graphql-sse's client does on a dropped stream, with the id it saw last: PUT, stream, the same operations again.
      const second = await openStream(a, await reserve(b), { 'last-event-id': last.id! });
      expect(second.response.status).toBe(200);
      expect((await postOperation(b, second.token, 'events', CHANNEL_EVENT, { channel, afterSeq: 0 })).status).toBe(
        202,
      );
      await second.reader.waitFor(
        (f) => isNextFor('events')(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 3,
      );
      await publish(1); // 4, live
      await second.reader.waitFor(
        (f) => isNextFor('events')(f) && payloadOf(f).payload.data?.['channelEvent']?.seq === 4,
      );
      expect(
        second.reader.frames
          .filter(isNextFor('events'))
          .map((f) => [f.id, payloadOf(f).payload.data?.['channelEvent']?.seq]),
      ).toEqual([
        ['events:3', 3],
        ['events:4', 4],
      ]);
      second.close();
    });

    it('answers 404 at once for a stream whose instance is gone', async () => {
      const token = `gone-${unique('token')}`;
      await redis.hset(`gsse:{${token}}`, 'owner', 'an-instance-that-stopped', 'n', 0);
      await redis.pexpire(`gsse:{${token}}`, 60_000);
      const started = Date.now();
      expect((await postOperation(a, token, 'x', '{ __typename }')).status).toBe(404);
      expect(await probe(a, token)).toBe(404);
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  },
);
