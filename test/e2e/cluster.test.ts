/**
 * Two server processes sharing real PostgreSQL and Redis behave as one server: votes cast on
 * either instance reach subscribers on both, seq stays strictly increasing, and every
 * subscriber's last update equals the recount of the stored ballots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  CastVoteDocument,
  CloseCompetitionDocument,
  LeaderboardDocument,
  TallyUntilClosedDocument,
  TallyUpdatedDocument,
} from '../generated/graphql.js';
import { subscribe, type Feed } from '../support/clients.js';

import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { freshDatabase } from '../support/backends.js';
import { startRedis } from '../support/redis.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

let stopInfra: () => Promise<void>;
let stopRedis: () => Promise<void>;
let databaseUrl: string;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  const [database, redis] = await Promise.all([freshDatabase({ migrated: false }), startRedis()]);
  stopInfra = async () => void (await Promise.all([database.drop(), redis.stop()]));
  stopRedis = () => redis.stop();
  databaseUrl = database.url;
  const env = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, TALLY_FLUSH_MS: '50' };
  // Both start at once: migrations must be applied exactly once.
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await stopInfra?.();
});

describe('two instances', () => {
  it('deliver every vote to subscribers on both instances and transports, ending exact', async () => {
    const { competitionId, submissionIds } = await openCompetition(a.graphqlUrl, 3);
    const feeds: Feed<{ tallyUpdated: { seq: number; totalVotes: number; entries: unknown[] } }>[] = [
      subscribe('graphql-ws', a.url, TallyUpdatedDocument, { competitionId }),
      subscribe('graphql-ws', b.url, TallyUpdatedDocument, { competitionId }),
      subscribe('sse', b.url, TallyUpdatedDocument, { competitionId }),
      subscribe('graphql-sse', a.url, TallyUpdatedDocument, { competitionId }),
    ];
    try {
      await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data !== undefined)));
      const voters = 60;
      await Promise.all(
        Array.from({ length: voters }, async (_, i) => {
          const token = await tokenFor({ sub: `cluster-voter-${i}` });
          const target = i % 2 === 0 ? a : b;
          dataOf(
            await execute(
              fetch,
              target.graphqlUrl,
              CastVoteDocument,
              { input: { competitionId, submissionId: submissionIds[i % 3]! } },
              token,
            ),
          );
        }),
      );

      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      const { rows } = await client.query<{ submissionId: string; n: number }>(
        'SELECT "submissionId", COUNT(*)::int AS n FROM "BallotEntry" WHERE "competitionId" = $1 GROUP BY 1',
        [competitionId],
      );
      await client.end();
      const recount = new Map(rows.map((r) => [r.submissionId, r.n]));
      expect([...recount.values()].reduce((x, y) => x + y, 0)).toBe(voters);

      const { leaderboard } = dataOf(await execute(fetch, b.graphqlUrl, LeaderboardDocument, { competitionId }));
      for (const entry of leaderboard) expect(entry.votes).toBe(recount.get(entry.submissionId));

      for (const feed of feeds) {
        const last = await feed.waitFor((r) => r.data?.tallyUpdated.totalVotes === voters);
        expect(last.data?.tallyUpdated.entries).toEqual(leaderboard);
        const seqs = feed.results.map((r) => r.data!.tallyUpdated.seq);
        for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      }
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });

  it('coalesce once per competition across instances: one update per window, newer ones only', async () => {
    const { competitionId, submissionIds } = await openCompetition(a.graphqlUrl, 2);
    const feeds = [
      subscribe('graphql-ws', a.url, TallyUpdatedDocument, { competitionId }),
      subscribe('sse', b.url, TallyUpdatedDocument, { competitionId }),
    ];
    try {
      await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data !== undefined)));
      const voters = 80;
      const tokens = await Promise.all(
        Array.from({ length: voters }, (_, i) => tokenFor({ sub: `window-voter-${i}` })),
      );
      // ~1.6 s of steady votes, alternating instances.
      for (let i = 0; i < voters; i += 1) {
        const target = i % 2 === 0 ? a : b;
        void execute(
          fetch,
          target.graphqlUrl,
          CastVoteDocument,
          { input: { competitionId, submissionId: submissionIds[i % 2]! } },
          tokens[i],
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const feed of feeds) {
        await feed.waitFor((r) => r.data?.tallyUpdated.totalVotes === voters);
        const updates = feed.results.map((r) => r.data!.tallyUpdated).slice(1); // after the snapshot
        const seqs = updates.map((u) => u.seq);
        // Strictly newer each time. Consecutive while the fan-out keeps up; a tally is a snapshot
        // stream, so a watcher that falls behind (a loaded test machine) gets the newest instead.
        expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!)).toBe(true);
        const gaps = updates.slice(1).map((u, i) => Date.parse(u.publishedAt) - Date.parse(updates[i]!.publishedAt));
        // TALLY_FLUSH_MS is 50 here: never two updates of one competition in the same window, cluster-wide.
        for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(40);
        expect(updates.length).toBeLessThan(voters / 2);
      }
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });

  it('end every watcher on both instances and transports with the final standings when the other instance closes the competition', async () => {
    const { competitionId, submissionIds } = await openCompetition(a.graphqlUrl, 2);
    const feeds = [
      subscribe('graphql-ws', a.url, TallyUntilClosedDocument, { competitionId }),
      subscribe('sse', a.url, TallyUntilClosedDocument, { competitionId }),
      subscribe('graphql-sse', a.url, TallyUntilClosedDocument, { competitionId }),
      subscribe('graphql-ws', b.url, TallyUntilClosedDocument, { competitionId }),
    ];
    try {
      await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data !== undefined)));
      const voters = 30;
      await Promise.all(
        Array.from({ length: voters }, async (_, i) => {
          const token = await tokenFor({ sub: `closing-voter-${i}` });
          const target = i % 2 === 0 ? a : b;
          dataOf(
            await execute(
              fetch,
              target.graphqlUrl,
              CastVoteDocument,
              { input: { competitionId, submissionId: submissionIds[i % 2]! } },
              token,
            ),
          );
        }),
      );
      const admin = await tokenFor({ sub: 'e2e-admin', role: 'ADMIN' });
      dataOf(await execute(fetch, b.graphqlUrl, CloseCompetitionDocument, { id: competitionId }, admin));

      await Promise.all(feeds.map((feed) => feed.ended));
      const finals = feeds.map((feed) => feed.results.at(-1)?.data?.tallyUpdated);
      for (const [i, feed] of feeds.entries()) {
        expect(finals[i]).toMatchObject({ status: 'CLOSED', totalVotes: voters });
        expect(feed.results.slice(0, -1).every((r) => r.data?.tallyUpdated.status === 'OPEN')).toBe(true);
      }
      expect(new Set(finals.map((f) => f?.seq)).size).toBe(1);

      const late = subscribe('graphql-ws', a.url, TallyUntilClosedDocument, { competitionId });
      await late.ended;
      expect(late.results.map((r) => r.data?.tallyUpdated)).toEqual([finals[0]]);
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });

  it('report ready only while the database and Redis answer', async () => {
    expect((await fetch(`${a.url}/ready`)).status).toBe(200);
    expect((await fetch(`${b.url}/ready`)).status).toBe(200);
    await stopRedis();
    const started = Date.now();
    expect((await fetch(`${a.url}/ready`)).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await fetch(`${a.url}/health`)).status).toBe(200);
  });
});
