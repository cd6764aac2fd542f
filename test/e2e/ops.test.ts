/**
 * Operations across two instances sharing PostgreSQL and Redis: the admin cluster view
 * (serverStatsUpdated on one instance counts the connections of both, and an instance that stops
 * leaves it), and a real Prometheus (Debian's package) scraping both instances' /metrics with
 * METRICS_TOKEN, whose query API then shows the contract's series per instance.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerStatsDocument, ServerStatsUpdatedDocument, TallyUpdatedDocument } from '../generated/graphql.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { subscribe, type Feed } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { freePort } from '../support/ports.js';
import { killOnExit, OutputTail } from '../support/processes.js';
import { until } from '../support/until.js';
import { openCompetition } from './support.js';

const METRICS_TOKEN = 'e2e-metrics-token';
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;
if (!hasPrometheus && process.env['CI'] === 'true')
  throw new Error('prometheus is missing: CI installs Debian’s prometheus package (.ci/run)');
if (!hasPrometheus)
  process.stderr.write(
    'ops.test.ts: prometheus not installed (apt-get install prometheus): skipping the scrape test\n',
  );

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ SERVER_STATS_INTERVAL_MS: '200', METRICS_TOKEN });
});
afterAll(async () => {
  await cluster?.stop();
});

interface Stats {
  serverStatsUpdated: {
    instances: { instanceId: string }[];
    connections: { ws: number; sse: number; graphqlSse: number; total: number };
  };
}

describe('serverStats across instances', () => {
  it('serverStatsUpdated on one instance counts the connections of both, by transport', async () => {
    const { a, b } = cluster;
    const admin = await tokenFor({ sub: 'ops-admin', name: 'Admin', role: 'ADMIN' });
    const { competitionId } = await openCompetition(a.graphqlUrl, 1);
    const watchers: Feed<unknown>[] = [
      subscribe('graphql-ws', b.url, TallyUpdatedDocument, { competitionId }),
      subscribe('graphql-ws', b.url, TallyUpdatedDocument, { competitionId }),
      subscribe('sse', b.url, TallyUpdatedDocument, { competitionId }),
      subscribe('graphql-sse', a.url, TallyUpdatedDocument, { competitionId }),
    ];
    await Promise.all(watchers.map((w) => w.waitFor((r) => r.data !== undefined)));
    // The admin's own graphql-ws connection is on A.
    const stats: Feed<Stats> = subscribe('graphql-ws', a.url, ServerStatsUpdatedDocument, {}, admin);
    try {
      await stats.waitFor((r) => {
        const c = r.data?.serverStatsUpdated.connections;
        return r.data?.serverStatsUpdated.instances.length === 2 && c?.ws === 3 && c.sse === 1 && c.graphqlSse === 1;
      }, 15_000);

      // Each instance samples itself every 200 ms: the snapshot above can hold a sample of B's taken
      // between its second graphql-ws connection and that connection's subscription, and stay B's
      // latest for up to 200 ms more. The query is read until B's entry is a sample from after it.
      const query = await until(15_000, "B's stats to count its two graphql-ws subscriptions", async () => {
        const read = dataOf(await execute(fetch, b.graphqlUrl, ServerStatsDocument, {}, admin));
        const entry = read.serverStats.instances.find((i) => i.connections.sse === 1);
        return entry?.subscriptions.ws === 2 ? read : undefined;
      });
      expect(query.serverStats.instances).toHaveLength(2);
      const onB = query.serverStats.instances.find((i) => i.connections.sse === 1);
      expect(onB?.connections).toEqual({ ws: 2, sse: 1, graphqlSse: 0, total: 3 });
      expect(onB?.subscriptions).toMatchObject({ ws: 2, sse: 1, graphqlSse: 0 });
      expect(onB!.uptimeSeconds).toBeGreaterThan(0);
      expect(onB!.memoryRssBytes).toBeGreaterThan(0);

      // Non-admins are refused.
      const audience = await tokenFor({ sub: 'ops-audience', name: 'A', role: 'AUDIENCE' });
      const refused = await execute(fetch, a.graphqlUrl, ServerStatsDocument, {}, audience);
      expect(refused.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');

      await Promise.all(watchers.map((w) => w.close()));
      await stats.waitFor((r) => r.data?.serverStatsUpdated.connections.total === 1, 15_000);
    } finally {
      await Promise.all(watchers.map((w) => w.close()));
      await stats.close();
    }
  });
});

describe.skipIf(!hasPrometheus)('a real Prometheus', () => {
  it('scrapes both instances with METRICS_TOKEN; its query API shows their series', async () => {
    const { a, b } = cluster;
    await openCompetition(b.graphqlUrl, 1); // mutations to count
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-prometheus-'));
    const port = await freePort();
    await writeFile(path.join(dir, 'token'), METRICS_TOKEN);
    const target = (url: string) => new URL(url).host;
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s }',
        'scrape_configs:',
        '  - job_name: ovation',
        `    authorization: { type: Bearer, credentials_file: ${path.join(dir, 'token')} }`,
        `    static_configs: [{ targets: ["${target(a.url)}", "${target(b.url)}"] }]`,
      ].join('\n'),
    );
    const output = new OutputTail();
    const child = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killOnExit(child);
    child.stdout?.on('data', (chunk: Buffer) => output.append(chunk));
    child.stderr?.on('data', (chunk: Buffer) => output.append(chunk));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`).catch(
        () => undefined,
      );
      if (!response?.ok) return [];
      return (
        (await response.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }
      ).data.result;
    };
    try {
      await expect
        .poll(async () => (await query('up{job="ovation"} == 1')).map((r) => r.metric['instance']).sort(), {
          timeout: 30_000,
          interval: 500,
        })
        .toEqual([target(a.url), target(b.url)].sort());
      const connections = await query('ovation_connections{transport="ws"}');
      expect(connections.map((r) => r.metric['instance']).sort()).toEqual([target(a.url), target(b.url)].sort());
      const operations = await query('sum by (name) (ovation_graphql_operations_total{type="mutation",code="OK"})');
      expect(operations.map((r) => r.metric['name'])).toEqual(
        expect.arrayContaining(['createCompetition', 'openCompetition']),
      );
      expect(await query('ovation_process_resident_memory_bytes')).toHaveLength(2);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nprometheus output:\n${output.toString()}`, { cause: error });
    } finally {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('an instance that stops', () => {
  it('leaves the cluster view at once (its sample is removed at shutdown)', async () => {
    const admin = await tokenFor({ sub: 'ops-admin', name: 'Admin', role: 'ADMIN' });
    const before = dataOf(await execute(fetch, cluster.a.graphqlUrl, ServerStatsDocument, {}, admin));
    expect(before.serverStats.instances).toHaveLength(2);
    await cluster.b.stop();
    const after = dataOf(await execute(fetch, cluster.a.graphqlUrl, ServerStatsDocument, {}, admin));
    expect(after.serverStats.instances.map((i) => i.instanceId)).toHaveLength(1);
  });
});
