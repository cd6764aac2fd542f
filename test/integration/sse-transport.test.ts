/**
 * Yoga's distinct-connection SSE as src/transport/sse.ts writes it: the exact wire format for
 * shared (direct) and unshared results (each `next` with its event's seq as `id:`), a single
 * result answered as next + complete, the shared stream released when the client goes away, and
 * a stream ended at its token’s exp.
 * graphql-sse's /graphql/stream: test/integration/graphql-sse.test.ts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CastVoteDocument } from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { openCompetition } from '../e2e/support.js';
import { parseBlock } from '../support/sse-frames.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ TALLY_FLUSH_MS: '20' }, { postgres: true });
});
afterAll(async () => {
  await t?.stop();
});

const TALLY = 'subscription ($id: ID!) { tallyUpdated(competitionId: $id) { seq totalVotes } }';

/** Reads the response body until `until(text)` holds. */
async function readUntil(
  body: ReadableStream<Uint8Array>,
  until: (text: string) => boolean,
): Promise<{ text: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!until(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { text, reader };
}

interface TallyEvent {
  id?: string;
  data: { tallyUpdated: { seq: number; totalVotes: number } };
}
const events = (text: string): TallyEvent[] =>
  text
    .split('\n\n')
    .map(parseBlock)
    .filter((frame) => frame.event === 'next')
    .map((frame) => ({ id: frame.id, ...(JSON.parse(frame.data!) as Omit<TallyEvent, 'id'>) }));

it('streams a shared subscription in the event-stream format, one event per update, and releases it on disconnect', async () => {
  const { competitionId, submissionIds } = await openCompetition(t.graphqlUrl, 1);
  const controller = new AbortController();
  const response = await fetch(t.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: TALLY, variables: { id: competitionId } }),
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/event-stream');

  const first = await readUntil(response.body!, (text) => events(text).length >= 1);
  expect(first.text.startsWith(':\n\n')).toBe(true);
  expect(events(first.text)[0]!.data.tallyUpdated.totalVotes).toBe(0);
  expect(t.app.sharedSubscriptions.stats()).toEqual({ streams: 1, subscribers: 1 });

  dataOf(
    await execute(
      fetch,
      t.graphqlUrl,
      CastVoteDocument,
      { input: { competitionId, submissionId: submissionIds[0]! } },
      await tokenFor({ sub: 'sse-wire-1' }),
    ),
  );
  let text = first.text;
  const decoder = new TextDecoder();
  while (!events(text).some((e) => e.data.tallyUpdated.totalVotes === 1)) {
    const { value, done } = await first.reader.read();
    if (done) throw new Error('stream ended early');
    text += decoder.decode(value, { stream: true });
  }
  // Every block is a comment or a complete next event with its seq as id; seqs only go up.
  for (const block of text.split('\n\n').filter(Boolean))
    expect(block === ':' || /^event: next\nid: \d+\ndata: \{.*\}$/.test(block)).toBe(true);
  const seqs = events(text).map((e) => e.data.tallyUpdated.seq);
  expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  expect(events(text).map((e) => e.id)).toEqual(seqs.map(String));

  controller.abort();
  await expect
    .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
    .toEqual({ streams: 0, subscribers: 0 });
});

it('answers a query asked for as an event stream with next, then complete', async () => {
  const response = await fetch(t.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: '{ __typename }' }),
  });
  const text = await response.text();
  expect(text).toContain('event: next\ndata: {"data":{"__typename":"Query"}}\n\n');
  expect(text.endsWith('event: complete\ndata:\n\n')).toBe(true);
});

it('ends a stream whose subscribe fails with the masked error, not a broken response', async () => {
  const response = await fetch(t.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: TALLY, variables: { id: 'no-such-competition' } }),
  });
  const text = await response.text();
  expect(text).toContain('"code":"NOT_FOUND"');
  expect(text).not.toContain('"http"');
  expect(text.endsWith('event: complete\ndata:\n\n')).toBe(true);
});

it('releases the subscriptions of clients that hang up right after asking', async () => {
  const { competitionId } = await openCompetition(t.graphqlUrl, 1);
  const { request } = await import('node:http');
  for (let i = 0; i < 5; i += 1) {
    const req = request(t.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ query: TALLY, variables: { id: competitionId } }), () => req.destroy());
  }
  await expect
    .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
    .toEqual({ streams: 0, subscribers: 0 });
});

it('ends a stream at its token’s exp with a final UNAUTHENTICATED "token expired" and complete, releasing the subscription', async () => {
  const { competitionId } = await openCompetition(t.graphqlUrl, 1);
  // Far enough ahead that a loaded machine has subscribed before the token expires.
  const exp = Math.floor(Date.now() / 1000) + 3;
  const response = await fetch(t.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      authorization: `Bearer ${await tokenFor({ sub: 'sse-expiring' }, exp)}`,
    },
    body: JSON.stringify({ query: TALLY, variables: { id: competitionId } }),
    // A stream still open 5 s after exp fails the test.
    signal: AbortSignal.timeout(exp * 1000 + 5_000 - Date.now()),
  });
  const text = await response.text();
  const endedAt = Date.now();
  expect(endedAt).toBeGreaterThanOrEqual(exp * 1000 - 50);
  expect(endedAt).toBeLessThan(exp * 1000 + 1500);
  expect(events(text)[0]!.data.tallyUpdated.totalVotes).toBe(0);
  expect(text).toMatch(
    /event: next\ndata: \{"errors":\[\{"message":"token expired","extensions":\{"code":"UNAUTHENTICATED","retryable":false\}\}\]\}\n\nevent: complete\ndata:\n\n$/,
  );
  await expect
    .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
    .toEqual({ streams: 0, subscribers: 0 });
});
