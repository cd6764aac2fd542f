/**
 * The kit against a real server (src/main.ts as a process, embedded PGlite) behind a proxy that
 * plays the network: resume after drops on every transport, the fallback ladder (WebSocket
 * refused → graphql-sse → polling, and back up), a silent network, token refresh, RESYNC_REQUIRED
 * (RESUME_WINDOW_SECONDS=1), a server killed and restarted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateConversationDocument,
  MarkConversationReadDocument,
  ResumeNotificationEventsDocument,
  SendMessageDocument,
} from '../../../../test/generated/graphql.js';
import { dataOf, execute, tokenFor } from '../../../../test/support/graphql.js';
import { startServerProcess, type ServerProcess } from '../../../../test/support/server-process.js';
import type { OvationClient, ResyncEvent } from '../../src/index.js';
import { ReadReceiptsDocument } from '../support/documents.js';
import {
  adminToken,
  channelHistory,
  kitClient,
  publishOne,
  recordChannel,
  recordSubscription,
  uniqueChannel,
} from '../support/harness.js';
import { startProxy, type Proxy } from '../support/proxy.js';

const RESUME_WINDOW_MS = 1_000;

let server: ServerProcess;
/** The server's data, kept by the test: a restarted server opens it again. */
let dataDir: string;
let proxy: Proxy;
let admin: string;
const clients: OvationClient[] = [];

const ENV = { RESUME_WINDOW_SECONDS: String(RESUME_WINDOW_MS / 1000) };

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-kit-'));
  server = await startServerProcess(ENV, { dataDir });
  proxy = await startProxy(server.url);
  admin = await adminToken();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.dispose();
  proxy.up();
  proxy.block({});
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

function client(options: Partial<Parameters<typeof kitClient>[0]> = {}) {
  const made = kitClient({ url: proxy.graphqlUrl, pollIntervalMs: 100, ...options });
  clients.push(made.client);
  return made;
}

const publish = (channel: string) => publishOne(server.graphqlUrl, channel, admin);
async function publishMany(channel: string, count: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i += 1) last = await publish(channel);
  return last;
}
const history = (channel: string) => channelHistory(server.graphqlUrl, channel, admin);
const lives = (statuses: { state: string }[]) => statuses.filter((s) => s.state === 'live').length;

describe('resume', () => {
  it.each(['ws', 'sse', 'poll'] as const)('over %s: every event exactly once across cuts', async (transport) => {
    const channel = uniqueChannel(transport);
    const { client: kit, live, statuses } = client({ transports: [transport] });
    // From the channel's start: a fresh channel, so every event it will ever have.
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live(transport);
    let last = 0;
    for (let round = 0; round < 3; round += 1) {
      last = await publish(channel);
      await feed.reach(last);
      proxy.cut();
      last = await publishMany(channel, 3); // while the kit is cut off: it gets them from its cursor
    }
    await feed.reach(last);
    expect(feed.seqs()).toEqual(await history(channel));
    // Polling opens no connection that lasts: a cut between two requests goes unnoticed.
    if (transport !== 'poll') expect(lives(statuses)).toBeGreaterThanOrEqual(4);
  });

  it('a subscription that has not received an event yet misses nothing either (anchored at its start)', async () => {
    const channel = uniqueChannel('anchor');
    await publish(channel); // before the subscription: not for it
    const { client: kit } = client();
    const feed = recordChannel(kit, channel);
    await feed.started();
    proxy.down();
    const last = await publishMany(channel, 3);
    proxy.up();
    await feed.reach(last);
    expect(feed.seqs()).toEqual((await history(channel)).slice(1));
  });
});

describe('fallback', () => {
  it('a refused WebSocket upgrade (HTTP 403) goes to graphql-sse at once, and back to ws when allowed again', async () => {
    const channel = uniqueChannel('ws403');
    proxy.block({ ws: 'refuse' });
    const { client: kit, live, statuses } = client({ probeIntervalMs: 300 });
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('sse');
    expect(statuses.filter((s) => s.state === 'reconnecting')).toEqual([]); // no backoff: a refusal is not an outage
    await feed.reach(await publish(channel));

    proxy.block({});
    const back = await live('ws', statuses.length);
    expect(back.transport).toBe('ws');
    const last = await publishMany(channel, 3);
    await feed.reach(last);
    expect(feed.seqs()).toEqual(await history(channel));
  });

  it('a WebSocket that closes before it opens (all a browser sees) goes to graphql-sse after failuresBeforeFallback attempts', async () => {
    const channel = uniqueChannel('wsdrop');
    proxy.block({ ws: 'drop' });
    const { client: kit, live, statuses } = client({ failuresBeforeFallback: 2 });
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('sse');
    expect(statuses.filter((s) => s.state === 'reconnecting')).toHaveLength(1); // one backoff between the two ws attempts
    await feed.reach(await publish(channel));
  });

  it('with WebSocket and event streams both refused it polls, exactly, and moves back up when streams pass again', async () => {
    const channel = uniqueChannel('poll');
    proxy.block({ ws: 'refuse', sse: true });
    const { client: kit, live, statuses } = client({ probeIntervalMs: 300 });
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('poll');
    let last = await publishMany(channel, 5);
    await feed.reach(last);

    proxy.block({ ws: 'refuse' });
    await live('sse', statuses.length);
    last = await publishMany(channel, 3);
    await feed.reach(last);
    expect(feed.seqs()).toEqual(await history(channel));
  });

  it('a silent network (no FIN, no RST) is noticed by the keep-alive and left', async () => {
    const channel = uniqueChannel('stall');
    const {
      client: kit,
      live,
      statuses,
      untilStatus,
    } = client({ transports: ['ws'], keepAliveMs: 200, keepAliveTimeoutMs: 300, connectTimeoutMs: 1_000 });
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('ws');
    await feed.reach(await publish(channel));
    proxy.stall();
    const last = await publishMany(channel, 3);
    await untilStatus(
      () =>
        statuses.some(
          (s) => s.state === 'reconnecting' && String((s.error as Error | undefined)?.message).includes('no pong'),
        ),
      'a reconnect after a missing pong',
    );
    proxy.up();
    await feed.reach(last);
    expect(feed.seqs()).toEqual(await history(channel));
  });
});

describe('tokens', () => {
  let issued = 0;
  /** A new 3 s token on each call, as an app's refresh would give. */
  const freshToken = () => {
    issued += 1;
    return tokenFor({ sub: 'kit-refresh', name: 'Refresh' }, '3s');
  };

  it('graphql-ws: refreshed in band before expiry, the connection outlives its tokens', async () => {
    const channel = uniqueChannel('refresh');
    issued = 0;
    const { client: kit, live, statuses } = client({ transports: ['ws'], token: freshToken });
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('ws');
    // A client that cannot refresh (always the same token) is cut at exp (4403) and, its token
    // refused again, gives up: the control that shows the expiry is real. Its backoff is capped at
    // 1 s: within JWT_CLOCK_TOLERANCE_SECONDS after exp its reconnects are accepted and cut again,
    // and with the default (doubling to 10 s) the two refusals it needs could be 20 s apart.
    const stale = await tokenFor({ sub: 'kit-refresh', name: 'Refresh' }, '3s');
    const control = recordChannel(
      client({ transports: ['ws'], token: () => stale, retry: { initialDelayMs: 100, maxDelayMs: 1_000 } }).client,
      channel,
      { afterSeq: 0 },
    );

    const until = performance.now() + 8_000; // beyond two token lifetimes
    while (performance.now() < until) {
      const last = await publish(channel);
      await feed.reach(last);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(feed.seqs()).toEqual(await history(channel));
    expect(lives(statuses)).toBe(1); // never reconnected
    expect(issued).toBeGreaterThanOrEqual(3);
    await control.until(() => control.errors.length > 0, 'the control to give up');
    expect(String(control.errors[0])).toMatch(/4403|expired/);
  });

  it('graphql-sse: a new connection with a new token before expiry, nothing missed', async () => {
    const channel = uniqueChannel('rotate');
    const { client: kit, live, statuses } = client({ transports: ['sse'], token: freshToken });
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('sse');
    let last = 0;
    const until = performance.now() + 7_000;
    while (performance.now() < until) {
      last = await publish(channel);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await feed.reach(last);
    expect(feed.seqs()).toEqual(await history(channel));
    expect(lives(statuses)).toBeGreaterThanOrEqual(3);
    expect(feed.errors).toEqual([]);
  });
});

/** A conversation whose read receipts (kept RESUME_WINDOW_SECONDS in the event log) a watcher follows. */
async function receiptTopic(): Promise<{ conversationId: string; watcher: string; produce(): Promise<void> }> {
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const [watcher, reader] = await Promise.all([
    tokenFor({ sub: `kit-watcher-${id}` }),
    tokenFor({ sub: `kit-reader-${id}` }),
  ]);
  await Promise.all(
    [watcher, reader].map((token) => execute(fetch, server.graphqlUrl, ResumeNotificationEventsDocument, {}, token)),
  );
  const { createConversation } = dataOf(
    await execute(
      fetch,
      server.graphqlUrl,
      CreateConversationDocument,
      { participantIds: [`kit-reader-${id}`] },
      watcher,
    ),
  );
  const conversationId = createConversation.id;
  return {
    conversationId,
    watcher,
    async produce() {
      const { sendMessage } = dataOf(
        await execute(
          fetch,
          server.graphqlUrl,
          SendMessageDocument,
          { input: { conversationId, body: 'read me' } },
          watcher,
        ),
      );
      dataOf(
        await execute(
          fetch,
          server.graphqlUrl,
          MarkConversationReadDocument,
          { conversationId, upToMessageId: sendMessage.id },
          reader,
        ),
      );
    },
  };
}

describe('RESYNC_REQUIRED', () => {
  it('AHEAD: a cursor beyond the stream is reported, then the subscription goes on from now', async () => {
    const channel = uniqueChannel('ahead');
    const resyncs: ResyncEvent[] = [];
    const { client: kit } = client({ onResync: (event) => resyncs.push(event) });
    const feed = recordChannel(kit, channel, { afterSeq: 1_000 });
    await feed.resynced();
    expect(feed.resyncs[0]).toMatchObject({
      field: 'channelEvent',
      reason: 'AHEAD',
      afterSeq: 1_000,
      latestSeq: 0,
      variables: { channel, afterSeq: 1_000 },
    });
    expect(resyncs).toHaveLength(1);
    await feed.started(2);
    const last = await publishMany(channel, 2);
    await feed.reach(last);
    expect(feed.seqs()).toEqual(await history(channel));
  });

  it.each(['ws', 'sse', 'poll'] as const)(
    'NOT_KEPT over %s: events gone while cut off are reported; the restarted stream continues after them',
    async (transport) => {
      const topic = await receiptTopic();
      const { client: kit } = client({ transports: [transport], token: () => topic.watcher });
      const feed = recordSubscription(kit, ReadReceiptsDocument, { conversationId: topic.conversationId });
      await feed.started();
      await topic.produce();
      await feed.count(1);
      expect(Object.keys(feed.values[0]!.readReceiptUpdated).sort()).toEqual(['lastReadSeq', 'user']); // the seq the kit added is not the app's

      proxy.down();
      await topic.produce(); // the second receipt, gone from the window by the time the kit is back
      await new Promise((resolve) => setTimeout(resolve, RESUME_WINDOW_MS + 600)); // the condition is time itself
      proxy.up();
      await feed.resynced();
      expect(feed.resyncs[0]).toMatchObject({
        field: 'readReceiptUpdated',
        reason: 'NOT_KEPT',
        afterSeq: 1,
        latestSeq: 2,
      });
      await topic.produce();
      await feed.count(2);
      expect(feed.values.map((v) => v.readReceiptUpdated.lastReadSeq)).toEqual([1, 3]); // the receipt up to message 2 is the one lost
    },
  );

  it("manual: the subscription waits for the app's restart() and then delivers what came since the resync", async () => {
    const channel = uniqueChannel('manual');
    const { client: kit } = client({ resync: 'manual' });
    const feed = recordChannel(kit, channel, { afterSeq: 5 });
    await feed.resynced();
    const last = await publishMany(channel, 2);
    expect(feed.starts).toHaveLength(1);
    expect(feed.values).toEqual([]);
    feed.resyncs[0]!.restart();
    await feed.reach(last);
    expect(feed.seqs()).toEqual([1, 2]);
  });
});

describe('server restart', () => {
  it('kill -9 and a new process on the same data: the kit comes back on its own and misses nothing', async () => {
    const channel = uniqueChannel('restart');
    const { client: kit, live, statuses } = client();
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('ws');
    await feed.reach(await publishMany(channel, 3));
    await server.stop('SIGKILL');
    const before = statuses.length;
    server = await startServerProcess(ENV, { dataDir });
    proxy.redirect(server.url);
    const last = await publishMany(channel, 3);
    expect(last).toBe(6); // the same database: the channel went on where it was
    await live('ws', before, 30_000);
    await feed.reach(last);
    expect(feed.seqs()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await history(channel)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
