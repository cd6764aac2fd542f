/**
 * The kit against two server processes on one PostgreSQL and one Redis, as in production: it
 * fails over from a killed instance (kill -9) to the other, urql and Apollo Client get an
 * unbroken stream across drops without a line of reconnection code, and the drop benchmark:
 * 20 drops (network cuts and instance kills behind a proxy playing the load balancer), the time
 * until each stream is live again, and not one event missed or repeated.
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { Client as UrqlClient, fetchExchange } from '@urql/core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ChannelEventDocument, ChannelEventsDocument } from '../../../../test/generated/graphql.js';
import { startCluster, type Cluster } from '../../../../test/support/cluster.js';
import { startServerProcess, type ServerProcess } from '../../../../test/support/server-process.js';
import { OvationLink } from '../../src/apollo.js';
import type { OvationClient } from '../../src/index.js';
import { ovationExchange } from '../../src/urql.js';
import {
  adminToken,
  Changes,
  channelHistory,
  kitClient,
  median,
  publishOne,
  recordChannel,
  startPublisher,
  uniqueChannel,
} from '../support/harness.js';
import { startProxy, type Proxy } from '../support/proxy.js';

let cluster: Cluster;
/** Instances started during the file (replacements for killed ones). */
const started: ServerProcess[] = [];
let admin: string;
const clients: OvationClient[] = [];
const proxies: Proxy[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  admin = await adminToken();
}, 120_000);
afterEach(async () => {
  for (const client of clients.splice(0)) client.dispose();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await cluster?.stop();
});

function client(options: Parameters<typeof kitClient>[0]) {
  const made = kitClient(options);
  clients.push(made.client);
  return made;
}
async function proxyTo(server: ServerProcess): Promise<Proxy> {
  const proxy = await startProxy(server.url);
  proxies.push(proxy);
  return proxy;
}
async function restart(): Promise<ServerProcess> {
  const server = await startServerProcess(cluster.env);
  started.push(server);
  return server;
}
async function publishMany(url: string, channel: string, count: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i += 1) last = await publishOne(url, channel, admin);
  return last;
}

it('urql: an exchange, codegen documents, an unbroken stream across drops', async () => {
  const proxy = await proxyTo(cluster.a);
  const { client: kit, live } = client({ url: proxy.graphqlUrl });
  const urql = new UrqlClient({ url: proxy.graphqlUrl, exchanges: [fetchExchange, ovationExchange(kit)] });
  const channel = uniqueChannel('urql');
  const changes = new Changes();
  const seqs: number[] = [];
  const subscription = urql.subscription(ChannelEventDocument, { channel, afterSeq: 0 }).subscribe((result) => {
    if (result.data) seqs.push(result.data.channelEvent.seq);
    changes.notify();
  });
  try {
    await live();
    for (let round = 0; round < 3; round += 1) {
      proxy.down(); // published on the other instance while this client is cut off
      const last = await publishMany(cluster.b.graphqlUrl, channel, 2);
      proxy.up();
      await changes.until(
        () => seqs.at(-1) === last,
        () => `seq ${last} through urql (have ${JSON.stringify(seqs)})`,
        15_000,
      );
    }
    expect(seqs).toEqual(await channelHistory(cluster.b.graphqlUrl, channel, admin));
    // Queries still take urql's own way.
    const history = await urql.query(ChannelEventsDocument, { channel, afterSeq: 0 }).toPromise();
    expect(history.data?.channelEvents.events.map((e) => e.seq)).toEqual(seqs);
  } finally {
    subscription.unsubscribe();
  }
});

it('Apollo Client: a link, codegen documents, an unbroken stream across drops', async () => {
  const proxy = await proxyTo(cluster.a);
  const { client: kit, live } = client({ url: proxy.graphqlUrl });
  const apollo = new ApolloClient({
    link: ApolloLink.from([new OvationLink(kit), new HttpLink({ uri: proxy.graphqlUrl })]),
    cache: new InMemoryCache(),
  });
  const channel = uniqueChannel('apollo');
  const changes = new Changes();
  const seqs: number[] = [];
  const subscription = apollo
    .subscribe({ query: ChannelEventDocument, variables: { channel, afterSeq: 0 } })
    .subscribe((result) => {
      if (result.data) seqs.push(result.data.channelEvent.seq);
      changes.notify();
    });
  try {
    await live();
    for (let round = 0; round < 3; round += 1) {
      proxy.down();
      const last = await publishMany(cluster.b.graphqlUrl, channel, 2);
      proxy.up();
      await changes.until(
        () => seqs.at(-1) === last,
        () => `seq ${last} through Apollo (have ${JSON.stringify(seqs)})`,
        15_000,
      );
    }
    expect(seqs).toEqual(await channelHistory(cluster.b.graphqlUrl, channel, admin));
    // Queries go on to the HttpLink.
    const { data } = await apollo.query({
      query: ChannelEventsDocument,
      variables: { channel, afterSeq: 0 },
      fetchPolicy: 'network-only',
    });
    expect(data?.channelEvents.events.map((e) => e.seq)).toEqual(seqs);
  } finally {
    subscription.unsubscribe();
    apollo.stop();
  }
});

it('kill -9 of its instance: the kit moves to the next URL of its list and resumes there, missing nothing', async () => {
  const channel = uniqueChannel('failover');
  const { client: kit, live, statuses } = client({ url: [cluster.a.graphqlUrl, cluster.b.graphqlUrl] });
  const feed = recordChannel(kit, channel, { afterSeq: 0 });
  const first = await live('ws');
  expect(first.url).toBe(cluster.a.graphqlUrl);
  await feed.reach(await publishMany(cluster.b.graphqlUrl, channel, 3));

  const before = statuses.length;
  await cluster.a.stop('SIGKILL');
  const last = await publishMany(cluster.b.graphqlUrl, channel, 5);
  const after = await live('ws', before);
  expect(after.url).toBe(cluster.b.graphqlUrl);
  await feed.reach(last);
  expect(feed.seqs()).toEqual(await channelHistory(cluster.b.graphqlUrl, channel, admin));
});

it(
  '20 drops (network cuts, instance kills): median time until the stream is live again, nothing missed',
  { timeout: 400_000 },
  async () => {
    const DROPS = 20;
    const STABLE_MS = 1_000; // the kit's stableAfterMs: drops further apart than this each start from the first backoff step
    // The previous test killed instance a: b serves, a replacement starts.
    let behind = cluster.b; // what the proxy (the load balancer) sends new connections to
    let spare: Promise<ServerProcess> = restart(); // the instance the next kill fails over to
    let publishTo = cluster.b;
    const proxy = await proxyTo(behind);
    const { client: kit, live } = client({ url: proxy.graphqlUrl, stableAfterMs: STABLE_MS });
    const channel = uniqueChannel('bench');
    const feed = recordChannel(kit, channel, { afterSeq: 0 });
    await live('ws');
    const publisher = startPublisher(() => publishTo.graphqlUrl, channel, admin, 25);
    await feed.count(5);

    const drops: { kind: 'network' | 'instance'; ms: number }[] = [];
    for (let i = 0; i < DROPS; i += 1) {
      const kind = i % 2 === 0 ? 'network' : 'instance';
      let killed: ServerProcess | undefined;
      let next: ServerProcess | undefined;
      if (kind === 'instance') {
        next = await spare; // the next instance must be up before this one goes
        publishTo = next;
        killed = behind;
      }
      const startsBefore = feed.starts.length;
      const t0 = performance.now();
      if (killed && next) {
        await killed.stop('SIGKILL');
        proxy.redirect(next.url);
        proxy.cut(); // what a balancer's health check then does to connections still pointing at the dead one
        behind = next;
        spare = restart();
      } else proxy.cut();
      // Live again: the subscription restarted on a new connection and delivered an event there.
      await feed.until(() => feed.starts.length > startsBefore, `drop ${i + 1} (${kind}): a restart`, 30_000);
      const restartedAt = feed.starts[startsBefore]!.at;
      await feed.until(
        () => (feed.arrivals.at(-1) ?? 0) > restartedAt,
        `drop ${i + 1} (${kind}): an event after the restart`,
        30_000,
      );
      drops.push({ kind, ms: feed.arrivals.find((at) => at > restartedAt)! - t0 });
      await new Promise((resolve) => setTimeout(resolve, STABLE_MS + 200 + Math.random() * 300)); // the pace of the drops
    }
    await publisher.stop();
    const history = await channelHistory(publishTo.graphqlUrl, channel, admin);
    await feed.reach(history.at(-1)!);
    await spare;

    const all = drops.map((d) => d.ms);
    const by = (kind: string) => drops.filter((d) => d.kind === kind).map((d) => d.ms);
    const fmt = (ms: number[]) => `median ${Math.round(median(ms))} ms, max ${Math.round(Math.max(...ms))} ms`;
    console.log(
      [
        `drop benchmark: ${DROPS} drops, ${history.length} events published at ~40/s, ${feed.values.length} delivered`,
        `  time until live again: ${fmt(all)} (each: ${all.map((ms) => Math.round(ms)).join(', ')})`,
        `  network cuts: ${fmt(by('network'))}; instance kills (kill -9, the balancer moves to the other instance): ${fmt(by('instance'))}`,
      ].join('\n'),
    );
    // Nothing missed, nothing twice, in order, across every drop.
    expect(feed.seqs()).toEqual(history);
    // The target is a median under 2 s, measured well below it (the output above; BENCHMARKS-style
    // figures in the kit's README). This bound only catches a real regression (say, a backoff that
    // no longer resets) without flaking on a loaded 2-core machine.
    expect(median(all)).toBeLessThan(4_000);
  },
);
