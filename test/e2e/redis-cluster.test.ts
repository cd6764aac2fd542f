/**
 * Two server processes on PostgreSQL and a local three-master Redis Cluster (REDIS_CLUSTER_NODES,
 * test/support/redis-cluster.ts): the product as it scales past one Redis. Topics of several
 * competitions (channels on different shards, SPUBLISH/SSUBSCRIBE) reach watchers on both
 * instances and every transport and end at the stored totals; a user's presence (scripts on the
 * user's partition of the schedule) is counted across instances and goes OFFLINE after the grace;
 * and the state really is spread over the masters.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  LeaderboardDocument,
  PresenceChangedDocument,
  PresenceDocument,
  TallyUpdatedDocument,
  type PresenceChangedSubscription,
} from '../generated/graphql.js';
import { subscribe, type Feed, type Transport } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { createTestDatabase, startPostgres } from '../support/postgres.js';
import { startRedisCluster, type RedisClusterServer } from '../support/redis-cluster.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const GRACE_MS = 1_500;

let stopInfra: () => Promise<void>;
let cluster: RedisClusterServer;
let a: ServerProcess;
let b: ServerProcess;
const feeds: Feed<unknown>[] = [];

beforeAll(async () => {
  const [postgres, started] = await Promise.all([startPostgres(), startRedisCluster()]);
  cluster = started;
  stopInfra = async () => void (await Promise.all([postgres.stop(), cluster.stop()]));
  const env = {
    DATABASE_URL: await createTestDatabase(postgres.url),
    REDIS_CLUSTER_NODES: cluster.seeds,
    TALLY_FLUSH_MS: '50',
    PRESENCE_OFFLINE_GRACE_MS: String(GRACE_MS),
    PRESENCE_CONNECTION_TTL_MS: '1500',
  };
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
});
afterAll(async () => {
  await Promise.all(feeds.map((f) => f.close()));
  await Promise.all([a?.stop(), b?.stop()]);
  await stopInfra?.();
});

function watch<T>(feed: Feed<T>): Feed<T> {
  feeds.push(feed);
  return feed;
}

describe('two instances on a Redis Cluster', () => {
  it('deliver votes on both instances for several competitions to watchers on both and every transport, ending at the stored totals', async () => {
    const competitions = await Promise.all([1, 2, 3].map(() => openCompetition(a.graphqlUrl, 2)));
    const transports: [Transport, ServerProcess][] = [
      ['graphql-ws', a],
      ['sse', b],
      ['graphql-sse', b],
    ];
    const watchers = competitions.map(({ competitionId }) =>
      transports.map(([transport, server]) =>
        watch(subscribe(transport, server.url, TallyUpdatedDocument, { competitionId })),
      ),
    );
    await Promise.all(watchers.flat().map((w) => w.waitFor((r) => r.data !== undefined)));
    const voters = 20;
    await Promise.all(
      competitions.flatMap(({ competitionId, submissionIds }, c) =>
        Array.from({ length: voters }, async (_, i) => {
          const token = await tokenFor({ sub: `rc-voter-${c}-${i}` });
          dataOf(
            await execute(
              fetch,
              (i % 2 ? a : b).graphqlUrl,
              CastVoteDocument,
              { input: { competitionId, submissionId: submissionIds[i % 2]! } },
              token,
            ),
          );
        }),
      ),
    );
    for (const [c, { competitionId }] of competitions.entries()) {
      const { leaderboard } = dataOf(await execute(fetch, a.graphqlUrl, LeaderboardDocument, { competitionId }));
      expect(leaderboard.map((entry) => entry.votes).sort()).toEqual([voters / 2, voters / 2]);
      for (const w of watchers[c]!) {
        const last = await w.waitFor((r) => r.data?.tallyUpdated.totalVotes === voters);
        expect(last.data?.tallyUpdated.entries).toEqual(leaderboard);
        const seqs = w.results.map((r) => r.data!.tallyUpdated.seq);
        for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      }
    }
  });

  it('count a user’s connections on both instances and announce OFFLINE after the grace on both', async () => {
    const token = await tokenFor({ sub: 'rc-alice' });
    const presenceOn = async (server: ServerProcess) =>
      dataOf(await execute(fetch, server.graphqlUrl, PresenceDocument, { userIds: ['rc-alice'] })).presence[0]!;
    const watchers: Feed<PresenceChangedSubscription>[] = [a, b].map((server) =>
      watch(subscribe('sse', server.url, PresenceChangedDocument, { userIds: ['rc-alice'] })),
    );
    await Promise.all(watchers.map((w) => w.waitFor((r) => r.data?.presenceChanged.status === 'OFFLINE')));
    const onA = watch(subscribe('graphql-ws', a.url, PresenceChangedDocument, { userIds: ['rc-alice'] }, token));
    const onB = watch(subscribe('graphql-sse', b.url, PresenceChangedDocument, { userIds: ['rc-alice'] }, token));
    await Promise.all([onA, onB].map((f) => f.waitFor((r) => r.data !== undefined)));
    for (const w of watchers) await w.waitFor((r) => r.data?.presenceChanged.connections === 2);
    expect(await presenceOn(b)).toMatchObject({ status: 'ONLINE', connections: 2 });

    await Promise.all([onA.close(), onB.close()]);
    const closedAt = Date.now();
    for (const w of watchers)
      await w.waitFor(
        (r) => r.data?.presenceChanged.status === 'OFFLINE' && r.data.presenceChanged.lastSeenAt !== null,
        10_000,
      );
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 200);
    expect(await presenceOn(a)).toMatchObject({ status: 'OFFLINE', connections: 0 });
  });

  it('spread their keys over the masters and report ready', async () => {
    const sizes = await Promise.all(
      cluster.servers.map(async (server) => {
        const client = new Redis(server.url);
        try {
          return await client.dbsize();
        } finally {
          client.disconnect();
        }
      }),
    );
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    for (const server of [a, b]) expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  });
});
