/**
 * sendMessage latency over HTTP, sequential, one app in this process (PGlite, or DATABASE_URL):
 * N sends to a conversation whose other participant is offline (each send also notifies), then
 * p50/p90/p99/mean and messages/s. Used to compare before/after a change on the send path
 * (RELIABILITY.md, Outbox: run it on both commits, alternating).
 *
 *   N=300 npx tsx bench/send-message-latency.ts        [DATABASE_URL=postgresql://… for PostgreSQL]
 */
import { startTestApp } from '../test/support/app.js';
import { tokenFor } from '../test/support/graphql.js';

const N = Number(process.env.N ?? 300);
// The test servers' settings (test/support/app.ts: high rate limits, fraud detection off).
const { url, stop } = await startTestApp(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {});
const token = (sub: string) => tokenFor({ sub, name: sub, role: 'AUDIENCE' });
async function gql<T = unknown>(query: string, variables: unknown, tok: string): Promise<T> {
  const r = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await r.json()) as { data?: T; errors?: unknown };
  if (body.errors || !body.data) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
const ann = await token('bench-ann');
const bob = await token('bench-bob');
await gql('{ me { id } }', {}, ann);
await gql('{ me { id } }', {}, bob);
const conv = await gql<{ createConversation: { id: string } }>(
  'mutation($p:[ID!]!){ createConversation(participantIds:$p, title:"b"){ id } }',
  { p: ['bench-bob'] },
  ann,
);
const send = 'mutation($i:SendMessageInput!){ sendMessage(input:$i){ id } }';
for (let i = 0; i < 30; i += 1)
  await gql(send, { i: { conversationId: conv.createConversation.id, body: `warm ${i}` } }, ann);
const times: number[] = [];
const started = performance.now();
for (let i = 0; i < N; i += 1) {
  const t0 = performance.now();
  await gql(send, { i: { conversationId: conv.createConversation.id, body: `m ${i}` } }, ann);
  times.push(performance.now() - t0);
}
const total = performance.now() - started;
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
console.log(
  JSON.stringify({
    backend: process.env.DATABASE_URL ? 'postgres' : 'pglite',
    N,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    mean: (times.reduce((a, b) => a + b, 0) / N).toFixed(2),
    perSecond: (N / (total / 1000)).toFixed(0),
  }),
);
await stop();
process.exit(0);
