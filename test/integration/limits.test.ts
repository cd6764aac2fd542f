/**
 * Protocol limits through the real server: query depth and cost, request body size (413, the
 * connection stays usable), batch size, and graphql-ws: operations per connection, the
 * connection_init timeout, message size, and malformed frames closed with the protocol's codes.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../support/app.js';
import { tokenFor } from '../support/graphql.js';
import { rawSocket, type RawSocket } from '../support/raw-ws.js';
import { openCompetition } from '../e2e/support.js';

let t: TestApp;
let competitionId: string;
const sockets: RawSocket[] = [];
beforeAll(async () => {
  t = await startTestApp(
    {
      MAX_QUERY_DEPTH: '3',
      MAX_QUERY_COMPLEXITY: '15',
      MAX_REQUEST_BODY_BYTES: '4096',
      MAX_BATCH_SIZE: '3',
      MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
      WS_CONNECTION_INIT_TIMEOUT_MS: '300',
      WS_MAX_MESSAGE_BYTES: '2048',
      WS_KEEP_ALIVE_MS: '400',
    },
    { postgres: true },
  );
  ({ competitionId } = await openCompetition(t.graphqlUrl, 1));
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await t?.stop();
});

const post = async (body: unknown) => {
  const response = await fetch(t.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as
      { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] } | unknown[],
  };
};
const errorsOf = (body: unknown) =>
  (body as { errors?: { message: string; extensions?: Record<string, unknown> }[] }).errors ?? [];

describe('query depth and complexity', () => {
  it('accepts an operation within both limits', async () => {
    const { status, body } = await post({ query: `{ competition(id: "${competitionId}") { submissions { id } } }` });
    expect(status).toBe(200);
    expect(errorsOf(body)).toEqual([]);
  });

  it('refuses an operation deeper than MAX_QUERY_DEPTH', async () => {
    const { body } = await post({ query: '{ competition(id: "x") { submissions { founder { id } } } }' });
    expect(errorsOf(body)[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      retryable: false,
      reason: 'QUERY_TOO_DEEP',
      depth: 4,
      maxDepth: 3,
    });
    expect((body as { data?: unknown }).data).toBeUndefined(); // refused before execution
  });

  it('refuses an operation costlier than MAX_QUERY_COMPLEXITY (lists count ×10)', async () => {
    const { body } = await post({
      query:
        '{ competition(id: "x") { submissions { id title competitionId } leaderboard { submissionId votes score rank } } }',
    });
    expect(errorsOf(body)[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'QUERY_TOO_COMPLEX',
      cost: 21,
      maxComplexity: 15,
    });
  });

  it('refuses documents nested beyond what the parser can take, before parsing', async () => {
    const { status, body } = await post({ query: '{' + 'a{'.repeat(500) + 'b' + '}'.repeat(500) + '}' });
    expect(status).toBeLessThan(500);
    expect(errorsOf(body)[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'QUERY_TOO_DEEP' });
  });

  it('applies to graphql-ws operations too', async () => {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    ws.send(JSON.stringify({ type: 'connection_init' }));
    await ws.next((m) => m['type'] === 'connection_ack');
    ws.send(
      JSON.stringify({
        type: 'subscribe',
        id: 'deep',
        payload: { query: '{ competition(id: "x") { submissions { founder { id } } } }' },
      }),
    );
    const error = await ws.next((m) => m['id'] === 'deep');
    expect(error['type']).toBe('error');
    expect((error['payload'] as { extensions: unknown }[])[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'QUERY_TOO_DEEP',
    });
    ws.close();
  });
});

describe('request size', () => {
  /** Requests over one kept-alive connection, to see that it survives a 413. */
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  afterAll(() => agent.destroy());
  function request(
    path: string,
    body: Buffer,
    chunked: boolean,
  ): Promise<{ status: number; body: string; socket: unknown }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (chunked) headers['transfer-encoding'] = 'chunked';
      else headers['content-length'] = String(body.length);
      const req = http.request(`${t.url}${path}`, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text, socket: req.socket }));
      });
      req.on('error', reject);
      if (chunked) for (let i = 0; i < body.length; i += 1024) req.write(body.subarray(i, i + 1024));
      else req.write(body);
      req.end();
    });
  }
  const big = Buffer.from(JSON.stringify({ query: `{ __typename } # ${'x'.repeat(10_000)}` }));
  const small = Buffer.from(JSON.stringify({ query: '{ __typename }' }));

  it.each([
    ['/graphql', false],
    ['/graphql', true],
    ['/graphql/stream', false],
    ['/graphql/stream', true],
  ])(
    'POST %s over MAX_REQUEST_BODY_BYTES (chunked: %s) → 413 with a JSON error; the connection stays usable',
    async (path, chunked) => {
      const refused = await request(path, big, chunked);
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.body)).toMatchObject({
        errors: [{ extensions: { code: 'BAD_USER_INPUT', retryable: false, reason: 'REQUEST_ENTITY_TOO_LARGE' } }],
      });
      const next = await request('/graphql', small, false);
      expect(next.status).toBe(200);
      expect(JSON.parse(next.body)).toEqual({ data: { __typename: 'Query' } });
      expect(next.socket).toBe(refused.socket);
    },
  );

  it('bounds batches to MAX_BATCH_SIZE', async () => {
    const ok = await post(Array.from({ length: 3 }, () => ({ query: '{ __typename }' })));
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(3);
    const refused = await post(Array.from({ length: 4 }, () => ({ query: '{ __typename }' })));
    expect(refused.status).toBe(413);
    expect(errorsOf(refused.body)[0]).toMatchObject({
      message: 'Batching is limited to 3 operations per request.',
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });
});

describe('graphql-ws', () => {
  const open = async (token?: string): Promise<RawSocket> => {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    ws.send(JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }));
    await ws.next((m) => m['type'] === 'connection_ack');
    return ws;
  };
  const tally = (id: string) => ({
    type: 'subscribe',
    id,
    payload: { query: `subscription { tallyUpdated(competitionId: "${competitionId}") { seq } }` },
  });

  it('refuses an operation beyond MAX_SUBSCRIPTIONS_PER_CONNECTION with an error for that id; the socket stays open', async () => {
    const ws = await open(await tokenFor({ sub: 'ws-many' }));
    ws.send(JSON.stringify(tally('1')));
    ws.send(JSON.stringify(tally('2')));
    await ws.next((m) => m['id'] === '1' && m['type'] === 'next');
    await ws.next((m) => m['id'] === '2' && m['type'] === 'next');
    ws.send(JSON.stringify(tally('3')));
    const refused = await ws.next((m) => m['id'] === '3');
    expect(refused).toMatchObject({
      type: 'error',
      payload: [
        { extensions: { code: 'RATE_LIMITED', retryable: true, rule: 'subscriptionsPerConnection', limit: 2 } },
      ],
    });
    ws.send(JSON.stringify({ type: 'ping' }));
    await ws.next((m) => m['type'] === 'pong');
    // One ends: room for another.
    ws.send(JSON.stringify({ type: 'complete', id: '1' }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    ws.send(JSON.stringify(tally('4')));
    expect(await ws.next((m) => m['id'] === '4')).toMatchObject({ type: 'next' });
    ws.close();
  });

  it('drops a peer that leaves a ping unanswered until the next one (WS_KEEP_ALIVE_MS), and keeps one that answers', async () => {
    const acknowledged = async (socket: WebSocket): Promise<void> => {
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
    };
    const silent = new WebSocket(t.wsUrl, 'graphql-transport-ws', { autoPong: false });
    const answering = new WebSocket(t.wsUrl, 'graphql-transport-ws');
    await Promise.all([acknowledged(silent), acknowledged(answering)]);
    const started = Date.now();
    const pings = { silent: 0, answering: 0 };
    silent.on('ping', () => (pings.silent += 1));
    answering.on('ping', () => (pings.answering += 1));
    const code = await new Promise<number>((resolve) => silent.once('close', resolve));
    expect(code).toBe(1006); // terminated, no close frame
    expect(pings.silent).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(2 * 400 + 400);
    // The answering peer outlives several sweeps.
    await new Promise((resolve) => setTimeout(resolve, 3 * 400));
    expect(pings.answering).toBeGreaterThanOrEqual(3);
    expect(answering.readyState).toBe(WebSocket.OPEN);
    answering.close();
  });

  it('closes with 4408 when connection_init does not come within WS_CONNECTION_INIT_TIMEOUT_MS', async () => {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    const started = Date.now();
    expect((await ws.closed).code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('closes with 1009 on a message over WS_MAX_MESSAGE_BYTES', async () => {
    const ws = await open();
    ws.send(
      JSON.stringify({ type: 'subscribe', id: 'big', payload: { query: `{ __typename } # ${'x'.repeat(3_000)}` } }),
    );
    expect((await ws.closed).code).toBe(1009);
  });

  it.each([
    ['not JSON', 'connection_init{', 4400],
    ['a JSON array', '[1,2]', 4400],
    ['no type', '{"id":"1"}', 4400],
    ['an unknown type', '{"type":"hello"}', 4400],
    ['a server-only message (next)', '{"type":"next","id":"1","payload":{"data":{}}}', 4400],
    ['a server-only message (connection_ack)', '{"type":"connection_ack"}', 4400],
    ['a server-only message (error)', '{"type":"error","id":"1","payload":[]}', 4400],
    ['subscribe without a query', '{"type":"subscribe","id":"1","payload":{}}', 4400],
    ['subscribe before connection_init', '{"type":"subscribe","id":"1","payload":{"query":"{ __typename }"}}', 4401],
  ])('closes on %s (%s) with %i', async (_what, frame, code) => {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    await ws.opened;
    ws.send(frame);
    expect((await ws.closed).code).toBe(code);
  });

  it('closes with 4400 on a binary frame that is not a message', async () => {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    await ws.opened;
    ws.send(Buffer.from([0xff, 0x00, 0x13, 0x37]), { binary: true });
    expect((await ws.closed).code).toBe(4400);
  });

  it('closes with 1007 on a text frame that is not UTF-8', async () => {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    await ws.opened;
    ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
    expect((await ws.closed).code).toBe(1007);
  });

  it('closes with 4429 on a second connection_init and 4409 on a duplicate operation id', async () => {
    const twice = await open();
    twice.send(JSON.stringify({ type: 'connection_init' }));
    expect((await twice.closed).code).toBe(4429);

    const duplicate = await open();
    duplicate.send(JSON.stringify(tally('same')));
    await duplicate.next((m) => m['id'] === 'same');
    duplicate.send(JSON.stringify(tally('same')));
    expect((await duplicate.closed).code).toBe(4409);
  });

  it('closes a socket without the graphql-transport-ws subprotocol with 4406', async () => {
    const ws = rawSocket(t.wsUrl, null);
    sockets.push(ws);
    expect((await ws.closed).code).toBe(4406);
  });

  it('is still healthy after all of that', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    expect((await fetch(`${t.url}/ready`)).status).toBe(200);
    const ws = await open();
    ws.send(JSON.stringify({ type: 'subscribe', id: 'q', payload: { query: '{ __typename }' } }));
    expect(await ws.next((m) => m['id'] === 'q')).toMatchObject({
      type: 'next',
      payload: { data: { __typename: 'Query' } },
    });
    ws.close();
  });
});
