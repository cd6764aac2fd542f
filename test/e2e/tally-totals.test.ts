/**
 * The running tally totals with two instances on one PostgreSQL and Redis: bursts of every voting
 * method spread over both, idempotent retries landing on the other instance, ballots replaced,
 * submissions added after votes, one instance restarted in between; leaderboard and Query.tally
 * on both, and the final standings every watcher on both receives, equal a recount by SQL of the
 * stored ballots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  CloseCompetitionDocument,
  LeaderboardDocument,
  TallyDocument,
  TallyStandingsUntilClosedDocument,
} from '../generated/graphql.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { subscribe } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import {
  addSubmission,
  burst,
  runningTotals,
  openCompetitions,
  recount,
  standingsOf,
  type ScenarioCompetition,
  type Sql,
} from '../support/voting-scenario.js';

let cluster: Cluster;
let restarted: ServerProcess | undefined;
let client: pg.Client;
const sql: Sql = async (text, params) => (await client.query(text, params)).rows;

beforeAll(async () => {
  cluster = await startCluster({ TALLY_FLUSH_MS: '50' });
  client = new pg.Client({ connectionString: cluster.databaseUrl });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await restarted?.stop();
  await cluster?.stop();
});

describe('running tally totals on two instances', () => {
  it('stay equal to a recount through bursts on both instances, retries, replacements, new submissions and a restart', async () => {
    const admin = await tokenFor({ sub: 'e2e-admin', role: 'ADMIN' });
    let instances: ServerProcess[] = [cluster.a, cluster.b];
    const urls = () => instances.map((i) => i.graphqlUrl);
    const expectQueriesExact = async (competitions: readonly ScenarioCompetition[]) => {
      for (const competition of competitions) {
        const expected = await recount(sql, competition.id);
        for (const instance of instances) {
          const { leaderboard } = dataOf(
            await execute(fetch, instance.graphqlUrl, LeaderboardDocument, { competitionId: competition.id }),
          );
          expect(standingsOf(leaderboard), `leaderboard of ${competition.method}`).toEqual(expected);
          const { tally } = dataOf(
            await execute(fetch, instance.graphqlUrl, TallyDocument, { competitionId: competition.id }),
          );
          expect(standingsOf(tally.entries), `tally of ${competition.method}`).toEqual(expected);
        }
      }
    };

    const competitions = await openCompetitions(cluster.a.graphqlUrl, admin, 3);
    const first = await burst(urls(), competitions, 1, 20, 'cluster-exact');
    for (const competition of competitions) await addSubmission(cluster.b.graphqlUrl, admin, competition);
    await burst(urls(), competitions, 2, 20, 'cluster-exact');
    await expectQueriesExact(competitions);

    // Instance a goes away and comes back while b keeps taking votes.
    const during = cluster.a.stop();
    instances = [cluster.b];
    await burst(urls(), competitions, 3, 20, 'cluster-exact');
    await during;
    restarted = await startServerProcess(cluster.env);
    instances = [restarted, cluster.b];
    await first.retry(urls());
    await burst(urls(), competitions, 4, 20, 'cluster-exact');
    await expectQueriesExact(competitions);

    for (const competition of competitions) {
      const feeds = instances.map((instance) =>
        subscribe('graphql-ws', instance.url, TallyStandingsUntilClosedDocument, { competitionId: competition.id }),
      );
      try {
        await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data !== undefined)));
        dataOf(await execute(fetch, instances[0]!.graphqlUrl, CloseCompetitionDocument, { id: competition.id }, admin));
        await Promise.all(feeds.map((feed) => feed.ended));
        const expected = await recount(sql, competition.id);
        for (const feed of feeds) {
          const final = feed.results.at(-1)?.data?.tallyUpdated;
          expect(final?.status).toBe('CLOSED');
          expect(standingsOf(final!.entries), `final standings of ${competition.method}`).toEqual(expected);
        }
        expect(await runningTotals(sql, competition.id)).toEqual(expected);
      } finally {
        await Promise.all(feeds.map((feed) => feed.close()));
      }
    }
  });
});
