/** The producer's live dashboard on every backend (a Redis Cluster too): rates, viewers across transports, movers. */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  DashboardUpdatedDocument,
  LiveDashboardDocument,
  TallyUpdatedDocument,
} from '../generated/graphql.js';
import { openCompetition } from '../e2e/support.js';
import { useTestApp } from '../support/app.js';
import { withCluster } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';

describe.each(withCluster)('live dashboard on $name', (backend) => {
  const t = useTestApp(backend);
  let admin: string;

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'producer', role: 'ADMIN' });
  });

  it('shows votes, rates, viewers and top movers, for admins only', async () => {
    const { competitionId, submissionIds } = await openCompetition(t.graphqlUrl, 2);
    const read = async () =>
      dataOf(await execute(fetch, t.graphqlUrl, LiveDashboardDocument, { competitionId }, admin)).liveDashboard;
    expect(await read()).toMatchObject({ totalVotes: 0, activeViewers: 0, reactionsPerSecond: null, topMovers: [] });

    const feeds = [
      subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId }),
      subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId }),
      subscribe('sse', t.url, TallyUpdatedDocument, { competitionId }),
    ];
    try {
      await Promise.all(feeds.map((f) => f.waitFor((r) => r.data !== undefined)));
      await expect.poll(async () => (await read()).activeViewers, { timeout: 5_000 }).toBe(3);
      for (let i = 0; i < 4; i += 1) {
        const token = await tokenFor({ sub: `dash-${i}` });
        dataOf(
          await execute(
            fetch,
            t.graphqlUrl,
            CastVoteDocument,
            { input: { competitionId, submissionId: submissionIds[0]! } },
            token,
          ),
        );
      }
      const dashboard = await read();
      expect(dashboard).toMatchObject({ totalVotes: 4, votesLastMinute: 4, votesPerSecond: 0.4 });
      expect(dashboard.topMovers).toEqual([{ submissionId: submissionIds[0], momentum: 4 }]);
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
    }
    await expect.poll(async () => (await read()).activeViewers, { timeout: 5_000 }).toBe(0);

    const audience = await tokenFor({ sub: 'not-a-producer' });
    expect(codesOf(await execute(fetch, t.graphqlUrl, LiveDashboardDocument, { competitionId }, audience))).toEqual([
      'FORBIDDEN',
    ]);
  });

  it('streams the dashboard to an admin and refuses others on subscribe', async () => {
    const { competitionId } = await openCompetition(t.graphqlUrl, 1);
    const feed = subscribe('graphql-ws', t.url, DashboardUpdatedDocument, { competitionId }, admin);
    const anonymous = subscribe('sse', t.url, DashboardUpdatedDocument, { competitionId });
    try {
      await feed.waitFor((r) => feed.results.filter((x) => x.data).length >= 2 && r.data !== undefined, 5_000);
      const refused = await anonymous.waitFor((r) => (r.errors?.length ?? 0) > 0);
      expect(refused.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    } finally {
      await feed.close();
      await anonymous.close();
    }
  });
});
