/**
 * A stalled reader (its connection stops taking data) on an event stream, over graphql-ws and SSE:
 * the server holds at most the field's maxQueued results for it, then ends its subscription with
 * RATE_LIMITED (reason SLOW_CONSUMER) as its last result, while another watcher of the same
 * stream gets every event, in order, without waiting for it. And every Subscription field
 * declares its policy (the schema refuses to build without one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { print } from 'graphql';
import { ChannelEventDocument, PublishToChannelDocument } from '../generated/graphql.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { schema } from '../../src/schema/index.js';
import { deliveryPoliciesOf } from '../../src/realtime/delivery.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { subscribe } from '../support/clients.js';
import { rawSocket } from '../support/raw-ws.js';

const MAX_QUEUED = deliveryPoliciesOf(schema).get('channelEvent');
const EVENTS = 700;
const PAYLOAD = 'x'.repeat(15_000);

describe('backpressure', () => {
  let t: TestApp;
  beforeAll(async () => {
    // 256 KiB: a watcher that reads keeps well below it (events are ~15 KB); the stalled one passes
    // it once the kernel's socket buffers (a few MB on loopback) are full.
    // Keep-alive off for the test's length: a stalled client also misses its pongs and would be
    // dropped after WS_KEEP_ALIVE_MS, which is not what this test looks at.
    t = await startTestApp({ SUBSCRIPTION_CLIENT_BUFFER_BYTES: '262144', WS_KEEP_ALIVE_MS: '600000' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('every Subscription field declares a delivery policy', () => {
    const fields = Object.keys(schema.getSubscriptionType()!.getFields()).sort();
    expect([...deliveryPoliciesOf(schema).keys()].sort()).toEqual(fields);
  });

  it('ends a stalled event-stream reader after maxQueued (graphql-ws and SSE); another watcher gets every event', async () => {
    expect(MAX_QUEUED).toEqual({ kind: 'events', maxQueued: 100 });
    const channel = `bp:${Date.now()}`;
    // Published the way an API client does (over HTTP): in-process calls on the embedded database
    // would resolve without ever yielding to I/O, so no socket would be read or written meanwhile.
    const admin = await tokenFor({ sub: 'bp-admin', role: 'ADMIN' });
    const publish = async (i: number) =>
      dataOf(
        await execute(
          fetch,
          t.graphqlUrl,
          PublishToChannelDocument,
          { channel, type: 'tick', data: { i, pad: PAYLOAD } },
          admin,
        ),
      );
    const query = print(ChannelEventDocument);

    // Stalled reader 1: graphql-ws.
    const ws = rawSocket(t.wsUrl);
    ws.send(JSON.stringify({ type: 'connection_init' }));
    await ws.next((m) => m['type'] === 'connection_ack');
    ws.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query, variables: { channel } } }));
    // Stalled reader 2: SSE, a response body nobody reads after the first event.
    const abort = new AbortController();
    const sse = await fetch(t.graphqlUrl, {
      method: 'POST',
      signal: abort.signal,
      headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables: { channel } }),
    });
    const sseReader = sse.body!.getReader();
    // A healthy watcher of the same stream.
    const healthy = subscribe('graphql-ws', t.url, ChannelEventDocument, { channel });

    try {
      // All three live: an event reaches each.
      for (let attempt = 0; ; attempt += 1) {
        await publish(-attempt);
        try {
          await healthy.waitFor((r) => r.data?.channelEvent.data !== undefined, 500);
          await ws.next((m) => m['type'] === 'next', 500);
          break;
        } catch (error) {
          if (attempt > 20) throw error;
        }
      }
      let sseText = '';
      while (!sseText.includes('event: next')) sseText += Buffer.from((await sseReader.read()).value!).toString();
      // ws's own pause(): pausing its net.Socket directly is undone whenever ws's frame parser drains.
      ws.socket.pause();
      const before = t.app.deliveryStats();

      for (let i = 1; i <= EVENTS; i += 1) await publish(i);

      const seqOf = (r: { data?: { channelEvent: { seq: number } } | null }) => r.data?.channelEvent.seq ?? 0;
      const lastSeq = seqOf(
        await healthy
          .waitFor((r) => (r.data?.channelEvent.data as { i?: number } | undefined)?.i === EVENTS, 60_000)
          .catch(() => {
            throw new Error(
              `the healthy watcher did not get every event; its last results: ${JSON.stringify(healthy.results.slice(-1)).slice(0, 300)}…`,
            );
          }),
      );
      const seqs = healthy.results.map((r) => seqOf(r as never));
      expect(seqs.at(-1)).toBe(lastSeq);
      expect(seqs.every((s, k) => k === 0 || s === seqs[k - 1]! + 1)).toBe(true);

      const after = t.app.deliveryStats();
      expect(after.slowConsumers - before.slowConsumers).toBe(2);
      // Bounded: maxQueued once the client is known to be behind, never more than 10 × maxQueued.
      expect(after.maxHeld).toBeLessThanOrEqual(1_000);
      expect(after.held).toBeLessThanOrEqual(2); // what still waits: the two final errors

      // The stalled graphql-ws reader reads again: what was held, then the error, then complete.
      ws.socket.resume();
      await ws.next((m) => m['type'] === 'complete' && m['id'] === 's', 30_000);
      const nexts = ws.messages.filter((m) => m['type'] === 'next');
      const last = nexts.at(-1)!['payload'] as { errors?: { extensions?: Record<string, unknown> }[] };
      expect(last.errors?.[0]?.extensions).toMatchObject({
        code: 'RATE_LIMITED',
        reason: 'SLOW_CONSUMER',
        retryable: true,
        maxQueued: 100,
      });
      expect(nexts.length).toBeLessThan(EVENTS);
    } finally {
      ws.close();
      abort.abort();
      await healthy.close();
    }
  }, 120_000);
});
