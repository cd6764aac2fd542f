/**
 * WORKERS=2: the real server (src/main.ts) as a cluster primary with two worker processes behind
 * one port, on real PostgreSQL and Redis. Both workers serve (each an instance: its own id on
 * /health), subscribers on every transport get every tally update and end on the exact count of
 * votes cast from many connections, a worker killed with SIGKILL is replaced and its clients
 * reconnect, and SIGTERM stops every worker cleanly. A scrape of /metrics, whichever worker takes
 * it, counts what both served. Also: graphql-sse's single-connection mode
 * with its reservation, stream and operations dealt to different workers, and the start-up refusals.
 */
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { print } from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  CastVoteDocument,
  LeaderboardDocument,
  TallyUpdatedDocument,
  type TallyUpdatedSubscription,
} from '../generated/graphql.js';
import { distinctSse, subscribe } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { freshDatabase } from '../support/backends.js';
import { freePort } from '../support/ports.js';
import { startRedis } from '../support/redis.js';
import { readSse } from '../support/sse-frames.js';
import { parseMetrics, valueOf, type Scrape } from '../support/metrics.js';
import { isAlive } from '../support/processes.js';
import { startExpectingExit, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

type Tally = TallyUpdatedSubscription['tallyUpdated'];
type WatchTransport = 'graphql-ws' | 'sse' | 'graphql-sse' | 'graphql-sse-single';
const TRANSPORTS: WatchTransport[] = ['graphql-ws', 'sse', 'graphql-sse', 'graphql-sse-single'];

const QUERY = print(TallyUpdatedDocument);

/** Every tally update one subscriber received, over however many connections it took. */
class Watch {
  readonly updates: Tally[] = [];
  /** Index in `updates` where each (re)connection's first result landed. */
  readonly connections: number[] = [];
  readonly errors: string[] = [];
  private readonly waiters = new Set<() => void>();
  private fresh = true;

  constructor(readonly transport: WatchTransport) {}

  /** The next result starts a new connection (a reconnect). */
  reconnected(): void {
    this.fresh = true;
  }

  push(result: { data?: TallyUpdatedSubscription | null; errors?: readonly unknown[] }): void {
    if (!result.data) {
      this.errors.push(JSON.stringify(result.errors));
      return;
    }
    if (this.fresh) this.connections.push(this.updates.length);
    this.fresh = false;
    this.updates.push(result.data.tallyUpdated);
    for (const wake of this.waiters) wake();
  }

  get last(): Tally | undefined {
    return this.updates.at(-1);
  }

  until(predicate: (tally: Tally) => boolean, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => this.last !== undefined && predicate(this.last);
      if (check()) return resolve();
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(
          new Error(
            `${this.transport}: no matching update within ${timeoutMs} ms; last ${JSON.stringify(this.last)}, errors ${this.errors.join(' ')}`,
          ),
        );
      }, timeoutMs);
      const wake = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
    });
  }
}

interface Watcher {
  watch: Watch;
  close(): Promise<void>;
}

const retryQuickly = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));

/**
 * A tallyUpdated subscriber that reconnects, as real clients do: graphql-ws and graphql-sse (both
 * of its modes) through their clients' retries, Yoga's SSE like a browser's EventSource (open
 * again once the stream breaks). graphql-sse's single-connection client sends each of its
 * requests on a new connection, so its reservation, stream and operations go to either worker.
 */
function watch(transport: WatchTransport, baseUrl: string, competitionId: string): Watcher {
  const w = new Watch(transport);
  const variables = { competitionId };
  if (transport === 'graphql-ws') {
    const client = createWsClient({
      url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 50,
      retryWait: retryQuickly,
      shouldRetry: () => true,
      on: { closed: () => w.reconnected() },
    });
    const unsubscribe = client.subscribe<TallyUpdatedSubscription>(
      { query: QUERY, variables },
      {
        next: (result) => w.push(result),
        error: (error) => w.errors.push(String(error)),
        complete: () => undefined,
      },
    );
    return { watch: w, close: async () => (unsubscribe(), await client.dispose()) };
  }
  if (transport === 'graphql-sse' || transport === 'graphql-sse-single') {
    const client = createSseClient({
      url: `${baseUrl}/graphql/stream`,
      retryAttempts: 50,
      retry: retryQuickly,
      on: { connecting: () => w.reconnected() },
      ...(transport === 'graphql-sse-single' && { singleConnection: true, fetchFn: onNewConnection }),
    });
    const unsubscribe = client.subscribe<TallyUpdatedSubscription>(
      { query: QUERY, variables },
      {
        next: (result) => w.push(result),
        error: (error) => w.errors.push(String(error)),
        complete: () => undefined,
      },
    );
    return { watch: w, close: async () => (unsubscribe(), client.dispose()) };
  }
  const abort = new AbortController();
  const done = (async () => {
    while (!abort.signal.aborted) {
      w.reconnected();
      try {
        for await (const result of distinctSse<TallyUpdatedSubscription>(
          `${baseUrl}/graphql`,
          QUERY,
          variables,
          undefined,
          abort.signal,
        ))
          w.push(result);
      } catch (error) {
        w.errors.push(String(error));
      }
      if (!abort.signal.aborted) await retryQuickly();
    }
  })();
  return { watch: w, close: async () => (abort.abort(), await done) };
}

/**
 * fetch on a connection of its own (no keep-alive pool): each request is dealt to a worker afresh.
 * The body streams (an event stream too) until it ends or `signal` aborts.
 */
function onNewConnection(input: string, init?: RequestInit): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const request = http.request(
      input,
      { method: init?.method ?? 'GET', headers, agent: false, signal: init?.signal ?? undefined },
      (response) => {
        const received = Object.entries(response.headers).flatMap(([k, v]) =>
          v === undefined ? [] : [[k, String(v)] as [string, string]],
        );
        const status = response.statusCode ?? 0;
        const body = status === 204 || status === 304 ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, headers: received }));
      },
    );
    request.on('error', reject);
    request.end(init?.body as string | undefined);
  });
}

/** The instance ids answering /health over `probes` new connections. */
async function instancesServing(baseUrl: string, probes = 8): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let i = 0; i < probes; i += 1) {
    const response = await onNewConnection(`${baseUrl}/health`);
    expect(response.status).toBe(200);
    ids.add(response.headers.get('x-yoga-id') ?? 'none');
  }
  return ids;
}

interface WorkerInfo {
  slot: number;
  pid: number;
  instance: string;
}

/** The workers the primary reported ready (its log at LOG_LEVEL=info), the latest per slot. */
function workersIn(output: string): Map<number, WorkerInfo> {
  const workers = new Map<number, WorkerInfo>();
  // One JSON object per log line (src/infra/logger.ts); other output (the banner) is not JSON.
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; pid?: number; instance?: string };
    const slot = /^worker (\d+) ready$/.exec(entry.msg ?? '')?.[1];
    if (slot !== undefined)
      workers.set(Number(slot), { slot: Number(slot), pid: entry.pid!, instance: entry.instance! });
  }
  return workers;
}

async function untilOutput(
  server: ServerProcess,
  predicate: (output: string) => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(server.output())) {
    if (Date.now() > deadline) throw new Error(`server output never matched:\n${server.output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const METRICS_TOKEN = 'workers-metrics-token';

/** GET /metrics on a new connection: either worker takes it. */
async function scrapeAnyWorker(): Promise<Scrape> {
  const response = await onNewConnection(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  const body = await response.text();
  expect(response.status, body).toBe(200);
  return parseMetrics(body);
}

let databaseUrl: string;
let server: ServerProcess;
let stopInfra: (() => Promise<void>) | undefined;

/** Casts one vote per voter, `concurrency` at a time, each on a new connection; all must be acknowledged. */
async function castVotes(
  competitionId: string,
  submissionIds: string[],
  voters: string[],
  concurrency = 20,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < voters.length) {
        const i = next++;
        const token = await tokenFor({ sub: voters[i]! });
        const input = { competitionId, submissionId: submissionIds[i % submissionIds.length]! };
        dataOf(await execute(onNewConnection, server.graphqlUrl, CastVoteDocument, { input }, token));
      }
    }),
  );
}

async function recount(competitionId: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ submissionId: string; n: number }>(
      'SELECT "submissionId", COUNT(*)::int AS n FROM "BallotEntry" WHERE "competitionId" = $1 GROUP BY 1',
      [competitionId],
    );
    return new Map(rows.map((r) => [r.submissionId, r.n]));
  } finally {
    await client.end();
  }
}

/** Every watcher's last update shows `total` votes and the stored standings, entry for entry. */
async function expectExactEverywhere(competitionId: string, watchers: Watcher[], total: number): Promise<void> {
  await Promise.all(watchers.map(({ watch: w }) => w.until((t) => t.totalVotes === total)));
  const stored = await recount(competitionId);
  expect([...stored.values()].reduce((x, y) => x + y, 0)).toBe(total);
  const { leaderboard } = dataOf(
    await execute(onNewConnection, server.graphqlUrl, LeaderboardDocument, { competitionId }),
  );
  for (const entry of leaderboard) expect(entry.votes).toBe(stored.get(entry.submissionId));
  for (const { watch: w } of watchers) {
    expect(w.last?.entries, w.transport).toEqual(leaderboard);
    // seq increases on each connection; a reconnect's first update (the current standings) may
    // repeat the last one seen, never go back.
    const seqs = w.updates.map((u) => u.seq);
    for (let i = 1; i < seqs.length; i += 1) {
      if (w.connections.includes(i)) expect(seqs[i], w.transport).toBeGreaterThanOrEqual(seqs[i - 1]!);
      else expect(seqs[i], w.transport).toBeGreaterThan(seqs[i - 1]!);
    }
  }
}

/** Opens `perTransport` watchers of each transport one after another, each live before the next. */
async function openWatchers(
  competitionId: string,
  transports: WatchTransport[],
  perTransport: number,
): Promise<Watcher[]> {
  const watchers: Watcher[] = [];
  for (let i = 0; i < perTransport; i += 1) {
    for (const transport of transports) {
      const watcher = watch(transport, server.url, competitionId);
      watchers.push(watcher);
      await watcher.watch.until(() => true);
    }
  }
  return watchers;
}

describe('WORKERS=2 on PostgreSQL and Redis', () => {
  beforeAll(async () => {
    const [database, redis] = await Promise.all([freshDatabase({ migrated: false }), startRedis()]);
    stopInfra = async () => void (await Promise.all([database.drop(), redis.stop()]));
    databaseUrl = database.url;
    server = await startServerProcess({
      WORKERS: '2',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      LOG_LEVEL: 'info',
      TALLY_FLUSH_MS: '50',
      METRICS_TOKEN,
    });
    // /ready answers once the first worker listens; the primary says when both do.
    await untilOutput(server, (output) => output.includes('Ovation ready: 2 workers'));
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await stopInfra?.();
  });

  it('deals connections to both workers, each an instance of its own (its id on /health)', async () => {
    const workers = workersIn(server.output());
    expect([...workers.keys()].sort()).toEqual([1, 2]);
    expect(new Set([...workers.values()].map((w) => w.pid)).size).toBe(2);
    expect([...workers.values()].every((w) => w.pid !== server.pid)).toBe(true);
    expect(await instancesServing(server.url)).toEqual(new Set([...workers.values()].map((w) => w.instance)));
    // One banner, from the primary, not one per worker.
    expect(server.output().match(/GraphiQL {8}/g)).toHaveLength(1);
  });

  it('delivers every tally update on every transport; 200 votes from as many connections end exact', async () => {
    const { competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 3);
    const watchers = await openWatchers(competitionId, TRANSPORTS, 3);
    const conflatedSoFar = async (): Promise<number> =>
      valueOf(await scrapeAnyWorker(), 'ovation_frames_conflated_total', { field: 'tallyUpdated' });
    try {
      const conflatedBefore = await conflatedSoFar();
      await castVotes(
        competitionId,
        submissionIds,
        Array.from({ length: 200 }, (_, i) => `workers-voter-${i}`),
      );
      await expectExactEverywhere(competitionId, watchers, 200);
      // Every update published after the watchers' first one reached all of them alike, whichever
      // worker holds them and whichever worker published it, but for conflation: a watcher whose
      // connection has not taken the previous standings yet gets the newer ones instead (a
      // snapshot is the whole state), and the server counts each one replaced. On a busy machine
      // that happens with updates 50 ms apart. (Not necessarily every seq either: when two workers
      // flush back to back, the higher seq's publish can reach Redis first, and the older one is
      // then dropped everywhere, as README "Transports" says.)
      const from = Math.max(...watchers.map((w) => w.watch.updates[0]!.seq));
      const published = (w: Watch): number[] => w.updates.filter((u) => u.seq > from).map((u) => u.seq);
      const everySeq = [...new Set(watchers.flatMap((w) => published(w.watch)))];
      expect(everySeq.length).toBeGreaterThan(5);
      let missed = 0;
      for (const { watch: w } of watchers) {
        expect(w.connections, w.transport).toEqual([0]); // no reconnect here
        const seen = new Set(published(w));
        missed += everySeq.filter((seq) => !seen.has(seq)).length;
      }
      const conflated = (await conflatedSoFar()) - conflatedBefore;
      console.log(`[workers] ${everySeq.length} updates, ${missed} missed by a watcher, ${conflated} conflated`);
      expect(missed, `updates some watchers missed, against ${conflated} conflated`).toBeLessThanOrEqual(conflated);
    } finally {
      await Promise.all(watchers.map((w) => w.close()));
    }
  });

  it('a scrape of /metrics on either worker counts what both served: counters and histograms summed, process series per worker', async () => {
    const { competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 2);
    const votes = { name: 'castVote', type: 'mutation' };
    const before = await scrapeAnyWorker();
    // Each vote on a new connection: the primary deals them to both workers in turn.
    await castVotes(
      competitionId,
      submissionIds,
      Array.from({ length: 40 }, (_, i) => `metrics-voter-${i}`),
    );
    // Several scrapes, each on a new connection, so both workers answer at least once: all agree.
    for (let i = 0; i < 4; i += 1) {
      const after = await scrapeAnyWorker();
      const delta = (name: string, labels: Record<string, string>): number =>
        valueOf(after, name, labels) - valueOf(before, name, labels);
      expect(delta('ovation_graphql_operations_total', { ...votes, code: 'OK' })).toBe(40);
      expect(delta('ovation_graphql_operation_duration_seconds_count', votes)).toBe(40);
      expect(delta('ovation_graphql_operation_duration_seconds_bucket', { ...votes, le: '+Inf' })).toBe(40);
      // Up everywhere: the minimum over the workers, not a count of them.
      expect(valueOf(after, 'ovation_dependency_up', { dependency: 'database' })).toBe(1);
      expect(valueOf(after, 'ovation_dependency_up', { dependency: 'redis' })).toBe(1);
      // Memory and event-loop lag per worker, never summed or averaged into one series.
      const rss = [...after.keys()].filter((key) => key.startsWith('ovation_process_resident_memory_bytes'));
      expect(rss.sort()).toEqual([
        'ovation_process_resident_memory_bytes{worker="1"}',
        'ovation_process_resident_memory_bytes{worker="2"}',
      ]);
      expect(valueOf(after, 'ovation_nodejs_eventloop_lag_p99_seconds', { worker: '2' })).toBeGreaterThan(0);
    }
  });

  it('replaces a worker killed with SIGKILL; its clients reconnect, on every transport, and end exact', async () => {
    const { competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 2);
    const watchers = await openWatchers(competitionId, TRANSPORTS, 4);
    const reconnected = (): Watcher[] => watchers.filter((w) => w.watch.connections.length > 1);
    /** SIGKILLs the worker in `slot`; resolves once the primary reports its replacement serving. */
    const kill = async (slot: number): Promise<void> => {
      const before = workersIn(server.output());
      const victim = before.get(slot)!;
      process.kill(victim.pid, 'SIGKILL');
      await untilOutput(server, (output) => {
        const replacement = workersIn(output).get(slot);
        return replacement !== undefined && replacement.pid !== victim.pid;
      });
      const after = workersIn(server.output());
      expect(isAlive(victim.pid)).toBe(false);
      const other = slot === 1 ? 2 : 1;
      expect(after.get(other)).toEqual(before.get(other)); // the other worker served on
      expect(after.get(slot)!.instance).not.toBe(victim.instance); // a new instance, not the dead one's
      expect(server.output()).toMatch(
        new RegExp(`worker ${slot} \\(pid ${victim.pid}\\) exited with signal SIGKILL; starting another in \\d+ ms`),
      );
      expect(await instancesServing(server.url)).toEqual(new Set([after.get(1)!.instance, after.get(2)!.instance]));
    };
    try {
      await castVotes(
        competitionId,
        submissionIds,
        Array.from({ length: 100 }, (_, i) => `killed-voter-a${i}`),
      );
      await Promise.all(watchers.map(({ watch: w }) => w.until((t) => t.totalVotes === 100)));

      await kill(2);
      await castVotes(
        competitionId,
        submissionIds,
        Array.from({ length: 50 }, (_, i) => `killed-voter-b${i}`),
      );
      await Promise.all(watchers.map(({ watch: w }) => w.until((t) => t.totalVotes === 150)));
      // The watchers worker 2 held reconnected; the others kept their connection to worker 1.
      expect(reconnected().length).toBeGreaterThan(0);
      expect(reconnected().length).toBeLessThan(watchers.length);

      // Then the one that served throughout: now every watcher has lost its worker once.
      await kill(1);
      await castVotes(
        competitionId,
        submissionIds,
        Array.from({ length: 50 }, (_, i) => `killed-voter-c${i}`),
      );
      await expectExactEverywhere(competitionId, watchers, 200);
      for (const { watch: w } of watchers) expect(w.connections.length, w.transport).toBeGreaterThan(1);
    } finally {
      await Promise.all(watchers.map((w) => w.close()));
    }
  });

  it('graphql-sse single-connection mode: reservation, stream, operations and DELETE each on a new connection (either worker)', async () => {
    const { competitionId } = await openCompetition(server.graphqlUrl, 1);
    const stream = (path: string, init: RequestInit = {}) => onNewConnection(`${server.url}${path}`, init);
    const reservation = await stream('/graphql/stream', { method: 'PUT' });
    expect(reservation.status).toBe(201);
    const token = await reservation.text();
    const abort = new AbortController();
    const opened = await stream('/graphql/stream', {
      headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token },
      signal: abort.signal,
    });
    expect(opened.status).toBe(200);
    const reader = readSse(opened);
    const post = (operationId: string, query: string, variables?: Record<string, unknown>) =>
      stream('/graphql/stream', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
        body: JSON.stringify({ query, variables, extensions: { operationId } }),
      });
    const frameOf = (event: string, operationId: string) => (f: { event?: string; data?: string }) =>
      f.event === event && (JSON.parse(f.data!) as { id: string }).id === operationId;
    try {
      // Connections alternate between the workers: these land on both, whichever holds the stream.
      for (let i = 0; i < 6; i += 1) expect((await post(`op-${i}`, '{ __typename }')).status).toBe(202);
      for (let i = 0; i < 6; i += 1) await reader.waitFor(frameOf('complete', `op-${i}`));
      expect((await post('watch', QUERY, { competitionId })).status).toBe(202);
      await reader.waitFor(frameOf('next', 'watch'));
      expect((await post('watch', QUERY, { competitionId })).status).toBe(409);
      // DELETE on both workers: the first stops it (no complete), the second finds nothing to stop.
      for (let i = 0; i < 2; i += 1)
        expect(
          (
            await stream('/graphql/stream?operationId=watch', {
              method: 'DELETE',
              headers: { 'x-graphql-event-stream-token': token },
            })
          ).status,
        ).toBe(200);
      // Its id is free again once it stopped, wherever it is posted from.
      expect((await post('watch', '{ __typename }')).status).toBe(202);
      await reader.waitFor(frameOf('complete', 'watch'));
      expect(reader.frames.filter(frameOf('complete', 'watch'))).toHaveLength(1);
    } finally {
      abort.abort();
    }
    // The stream's end is its reservation's: the token is unknown to both workers then.
    await expect
      .poll(
        async () => {
          const statuses = new Set<number>();
          for (let i = 0; i < 2; i += 1) statuses.add((await post('late', '{ __typename }')).status);
          return [...statuses];
        },
        { timeout: 10_000 },
      )
      .toEqual([404]);
  });

  it('SIGTERM stops every worker cleanly: graphql-ws closes 1001, SSE ends, exit 0', async () => {
    const workers = [...workersIn(server.output()).values()];
    const { competitionId } = await openCompetition(server.graphqlUrl, 1);
    // Raw sockets, one per worker at least (connections alternate between them).
    const sockets = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
        await new Promise((resolve) => socket.once('open', resolve));
        socket.send(JSON.stringify({ type: 'connection_init' }));
        await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
        // In an object: an async function returning the promise itself would wait for the close.
        return { closed: new Promise<number>((resolve) => socket.once('close', (code) => resolve(code))) };
      }),
    );
    // Streams that do not reconnect: one that does may open again during the drain (README).
    const sse = Array.from({ length: 4 }, () => subscribe('sse', server.url, TallyUpdatedDocument, { competitionId }));
    await Promise.all(sse.map((feed) => feed.waitFor((r) => r.data !== undefined)));
    const exit = await server.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(exit.ms).toBeLessThan(10_000);
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([1001, 1001, 1001, 1001]);
    for (const worker of workers) expect(isAlive(worker.pid)).toBe(false);
    expect(server.output()).toContain('all workers stopped');
    await Promise.all(sse.map((feed) => feed.ended));
  });
});

describe('WORKERS start-up', () => {
  it.each([
    ['neither', {}, 'DATABASE_URL and REDIS_URL'],
    ['no REDIS_URL', { DATABASE_URL: 'postgres://127.0.0.1:1/x' }, 'REDIS_URL'],
    ['no DATABASE_URL, WORKERS=auto', { REDIS_URL: 'redis://127.0.0.1:1', WORKERS: 'auto' }, 'DATABASE_URL'],
  ])('refuses more than one worker without shared services (%s), in one line naming them', async (_, env, missing) => {
    const result = await startExpectingExit({ WORKERS: '2', PORT: String(await freePort()), ...env });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^Invalid configuration: WORKERS \\w+ needs ${missing}: `));
    expect(result.stdout).toBe('');
  });

  it('checks PORT once, in the primary, and stops in one line when it is busy', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ port: 0, host: '127.0.0.1' }, resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const result = await startExpectingExit({
        WORKERS: '2',
        PORT: String(port),
        DATABASE_URL: 'postgres://127.0.0.1:1/x',
        REDIS_URL: 'redis://127.0.0.1:1',
      });
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toEqual([
        `PORT ${port} is already in use on 127.0.0.1: stop what holds it, or set PORT to a free port`,
      ]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('gives up in one line when workers keep dying before they serve', async () => {
    // Nothing listens on port 1: every worker fails to open the database at once.
    const result = await startExpectingExit({
      WORKERS: '2',
      PORT: String(await freePort()),
      DATABASE_URL: 'postgres://127.0.0.1:1/x',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(
      /^Ovation: 3 workers in a row exited before serving \(the last with code 1; its output is above\): giving up$/,
    );
    expect(result.stderr).toMatch(/worker \d \(pid \d+\) exited with code 1; starting another in 250 ms/);
  }, 90_000);
});
