/**
 * Test harness: a local three-master Redis Cluster (no replicas) of real `redis-server` processes
 * started with `--cluster-enabled yes`, each on a free 127.0.0.1 port in its own temp dir
 * (test/support/redis.ts), joined with `redis-cli --cluster create … --cluster-replicas 0`.
 *
 *   const cluster = await startRedisCluster();
 *   // ... REDIS_CLUSTER_NODES: cluster.seeds, or new Cluster(cluster.nodes) ...
 *   await cluster.stop();
 *
 * `sharedRedisCluster()` starts one per test process (a vitest worker) on first use and stops it
 * when the process exits, so that the files that run against both a single Redis and a cluster
 * pay the cluster's start-up once; they `flush()` it between uses.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './redis.js';

const run = promisify(execFile);

export interface RedisClusterServer {
  nodes: { host: string; port: number }[];
  /** `host:port,host:port,host:port`: the value of REDIS_CLUSTER_NODES. */
  seeds: string;
  servers: RedisServer[];
  /** Deletes every key on every master (FLUSHALL) and drops every shard's pub/sub clients' keys. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

const MASTERS = 3;

export async function startRedisCluster(options: { startTimeoutMs?: number } = {}): Promise<RedisClusterServer> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const servers = await Promise.all(
    Array.from({ length: MASTERS }, () =>
      startRedis({
        extraArgs: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          // Short: a test that stops a node sees the cluster notice it quickly.
          '--cluster-node-timeout',
          '2000',
        ],
      }),
    ),
  );
  const stop = async (): Promise<void> => void (await Promise.all(servers.map((s) => s.stop())));
  try {
    const addresses = servers.map((s) => `${s.host}:${s.port}`);
    const cli = process.env.REDIS_CLI_BIN ?? 'redis-cli';
    await run(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: startTimeoutMs,
    });
    await untilClusterOk(servers, startTimeoutMs);
    return {
      nodes: servers.map((s) => ({ host: s.host, port: s.port })),
      seeds: addresses.join(','),
      servers,
      async flush() {
        await Promise.all(servers.map((s) => withClient(s, (client) => client.flushall())));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Every node says cluster_state:ok and knows all three masters (the gossip has converged). */
async function untilClusterOk(servers: RedisServer[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const states = await Promise.all(
      servers.map((s) =>
        withClient(s, async (client) => {
          const info = (await client.call('CLUSTER', 'INFO')) as string;
          return info.includes('cluster_state:ok') && /cluster_known_nodes:3\b/.test(info) ? 'ok' : info;
        }),
      ),
    );
    if (states.every((state) => state === 'ok')) return;
    last = states.find((state) => state !== 'ok') ?? '';
    await sleep(50);
  }
  throw new Error(`startRedisCluster: the cluster did not reach cluster_state:ok in ${timeoutMs} ms\n${last}`);
}

async function withClient<T>(server: RedisServer, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(server.port, server.host, { maxRetriesPerRequest: 1 });
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

const SHARED = Symbol.for('ovation.test.sharedRedisCluster');
interface Holder {
  [SHARED]?: Promise<RedisClusterServer>;
}

/**
 * This test process's cluster, started on first use. Its servers are killed by PID when the
 * process exits (processes.ts's exit hook) and their directories removed here.
 */
export function sharedRedisCluster(): Promise<RedisClusterServer> {
  const holder = globalThis as Holder;
  if (!holder[SHARED]) {
    const started = startRedisCluster();
    holder[SHARED] = started;
    started.then(
      (cluster) =>
        process.once('exit', () => {
          for (const server of cluster.servers) rmSync(server.dir, { recursive: true, force: true });
        }),
      () => {
        delete holder[SHARED]; // a later caller tries again
      },
    );
  }
  return holder[SHARED];
}
