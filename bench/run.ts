/**
 * One benchmark scenario against one target, start to finish:
 *
 *   npx tsx bench/run.ts --target ovation|stock-yoga|raw-ws --subscribers 10000 --transport ws|sse \
 *     --votes-per-sec 500 --duration 20 --flush-ms 250 [--postgres | --database-url URL] [--redis] [--workers N] [--cpu-prof]
 *
 * 1. starts the target as a child process (ovation with a fresh temp DATA_DIR → embedded PGlite,
 *    or on PostgreSQL), waits for /ready, creates an OPEN SIMPLE competition with a few submissions;
 * 2. opens N tallyUpdated subscribers from this process (raw ws / SSE), ramped in batches;
 * 3. drives castVote from a separate vote process (lib/vote-worker.ts: its event loop holds no
 *    subscriber socket) at a fixed offered rate, open loop, latency from each vote's due time (or,
 *    with --votes-per-sec 0, as fast as --vote-concurrency closed-loop workers go) for --duration
 *    seconds, one distinct voter per vote;
 * 4. drains, probes the server's latest seq with one fresh subscription, audits every subscriber
 *    (missing seqs, final totalVotes == votes acknowledged), samples server RSS/CPU every 500 ms,
 *    splits the machine's CPU over the load between server, generators, PostgreSQL, Redis and
 *    other, and flags the run when a generator's event loop ran late (lib/trust.ts);
 * 5. prints one JSON line and a table, writes bench/results/<timestamp>-<scenario>.json, stops
 *    every child it started by PID (also on error, signal or the hard time limit).
 *
 * Needs file descriptors: raise `ulimit -n` (>= subscribers + vote sockets + 1024) in the calling shell.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanup, killAllTrackedSync } from './lib/children.js';
import { selfTest, signHs256 } from './lib/jwt.js';
import { LoopDelay, type LoopDelayMs } from './lib/loop-delay.js';
import { setupCompetition, TALLY_PROBE_SUBSCRIPTION } from './lib/operations.js';
import { startPostgres, type RunningPostgres } from './lib/postgres.js';
import { cpuSplit, ProcSampler, snapshotCpu, type CpuGroups, type CpuSnapshot } from './lib/proc.js';
import { formatSummary, summarise, type ProfileSummary } from './lib/profile.js';
import { startRedis, type RunningRedis } from './lib/redis.js';
import { round } from './lib/stats.js';
import { SubscriberPool, type Transport } from './lib/subscribers.js';
import { ROOT, startTarget, TARGETS, type RunningTarget, type TargetName } from './lib/targets.js';
import { kernelNetDelta, readKernelNet, type KernelNetCounters } from './lib/kernel-net.js';
import { assessTrust } from './lib/trust.js';
import { socketsFor, startVoteWorker, type VoteReport, type VoteWorker } from './lib/voters.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'ovation' },
    transport: { type: 'string', default: 'ws' },
    subscribers: { type: 'string', default: '1000' },
    'votes-per-sec': { type: 'string', default: '200' },
    'vote-concurrency': { type: 'string', default: '64' },
    'vote-sockets': { type: 'string', default: '0' },
    'vote-budget-ms': { type: 'string', default: '1000' },
    'max-outstanding': { type: 'string', default: '0' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '0' },
    'flush-ms': { type: 'string', default: '100' },
    submissions: { type: 'string', default: '4' },
    'ramp-concurrency': { type: 'string', default: '200' },
    'ramp-timeout': { type: 'string', default: '180' },
    'drain-timeout': { type: 'string', default: '15' },
    'vote-grace': { type: 'string', default: '20' },
    postgres: { type: 'boolean', default: false },
    'database-url': { type: 'string' },
    redis: { type: 'boolean', default: false },
    'pool-size': { type: 'string' },
    workers: { type: 'string', default: '1' },
    'server-env': { type: 'string', multiple: true },
    'server-log': { type: 'string' },
    'server-node-arg': { type: 'string', multiple: true },
    priority: { type: 'string', default: '0' },
    'cpu-prof': { type: 'boolean', default: false },
    scenario: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    [
      'npx tsx bench/run.ts --target ovation|stock-yoga|raw-ws [options]',
      '  --transport ws|sse         subscriber transport (default ws)',
      '  --subscribers N            tallyUpdated subscribers (default 1000; 0 = nobody watching)',
      '  --votes-per-sec R          offered vote rate, open loop (default 200); 0 = max rate, closed loop',
      '  --vote-concurrency C       workers at max rate (default 64)',
      '  --vote-budget-ms B         latency of a server answering in time (default 1000): the vote pool is sized for it',
      '  --vote-sockets K           keep-alive connections at a fixed rate (default 0 = rate x budget, at least 16)',
      '  --max-outstanding N        unanswered votes beyond which due votes are not sent (default 0 = max(2000, 30 s of rate))',
      '  --duration S               seconds of load (default 20, at most 60)',
      '  --warmup S                 seconds of the same vote load before the measured window, not counted (default 0)',
      '  --flush-ms F               ovation TALLY_FLUSH_MS (0 → 1); references: coalescing window, 0 = publish every vote',
      '  --submissions S            submissions in the competition (default 4)',
      '  --postgres                 ovation on a throwaway PostgreSQL 15 (else embedded PGlite)',
      '  --database-url URL         ovation on this PostgreSQL instead',
      '  --redis                    ovation with REDIS_URL on a throwaway redis-server ($REDIS_SERVER_BIN or PATH)',
      '  --pool-size N              ovation DATABASE_POOL_SIZE (per worker)',
      '  --workers N                ovation WORKERS: N processes on one port (N > 1 implies --postgres --redis);',
      '                             server CPU counts the primary and every worker',
      '  --server-env KEY=VALUE     extra environment for the server (repeatable)',
      '  --server-log FILE          write what the server printed (its last 4 MB) to FILE',
      '  --server-node-arg FLAG     a node/V8 flag for the server process, e.g. --trace-gc-nvp (repeatable)',
      '  --priority=N               nice value for the server and PostgreSQL (e.g. -10 on a shared machine; root only);',
      '                             start this process with `nice -n N` too',
      '  --cpu-prof                 run the server under node --cpu-prof and summarise it',
      '  --scenario NAME            label for the results file',
      '  --out FILE                 results path (default bench/results/<timestamp>-<scenario>.json)',
    ].join('\n') + '\n',
  );
  process.exit(0);
}

const target = values.target as TargetName;
if (!TARGETS.includes(target)) throw new Error(`--target must be one of ${TARGETS.join(', ')}`);
const transport = values.transport as Transport;
if (transport !== 'ws' && transport !== 'sse') throw new Error('--transport must be ws or sse');
const subscribers = Number(values.subscribers);
const votesPerSec = Number(values['votes-per-sec']);
const durationS = Math.min(60, Number(values.duration));
const warmupS = Math.min(30, Number(values.warmup));
const flushMs = Number(values['flush-ms']);
const submissions = Number(values.submissions);
const drainTimeoutMs = Number(values['drain-timeout']) * 1000;
const priority = Number(values.priority);
const rampTimeoutMs = Number(values['ramp-timeout']) * 1000;
const voteBudgetMs = Number(values['vote-budget-ms']);
const voteConcurrency = Number(values['vote-concurrency']);
// Open loop: enough keep-alive connections that a server answering within the budget never waits
// for the client (rate x budget in flight); closed loop: one per worker.
const voteSockets =
  votesPerSec > 0 ? Number(values['vote-sockets']) || socketsFor(votesPerSec, voteBudgetMs) : voteConcurrency;
const maxOutstanding = Number(values['max-outstanding']) || Math.max(2_000, votesPerSec * 30);
for (const [k, v] of Object.entries({
  subscribers,
  votesPerSec,
  durationS,
  flushMs,
  submissions,
  voteBudgetMs,
  voteSockets,
  voteConcurrency,
})) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad --${k}`);
}
// Each subscriber and each vote connection is one descriptor in the server (which inherits this
// limit) and one in a generator process.
try {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = Number(/Max open files\s+(\d+)/.exec(limits)?.[1]);
  if (Number.isFinite(soft) && soft < subscribers + voteSockets + 1024) {
    process.stderr.write(
      `bench: open-file limit ${soft} is too low for ${subscribers} subscribers and ${voteSockets} vote connections; run \`ulimit -n 65536\` (or the hard limit) in this shell first\n`,
    );
    process.exit(2);
  }
} catch {
  /* not Linux */
}
const workers = target === 'ovation' ? Number(values.workers) : 1;
if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers must be a positive integer');
// More than one worker needs the shared services (src/config.ts refuses to start without them).
const usePostgres = values.postgres || values['database-url'] !== undefined || workers > 1;
const useRedis = (values.redis || workers > 1) && target === 'ovation';
const scenario =
  values.scenario ??
  `${target}-${subscribers > 0 ? `${transport}-${subscribers}subs` : 'nosubs'}-${votesPerSec > 0 ? `${votesPerSec}vps` : `max${voteConcurrency}c`}-f${flushMs}${target === 'ovation' ? (usePostgres ? '-pg' : '-pglite') + (useRedis ? '-redis' : '') + (workers > 1 ? `-w${workers}` : '') : ''}`;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = path.join(ROOT, 'bench', 'results');
const outFile = values.out ?? path.join(resultsDir, `${stamp}-${scenario}.json`);

const log = (line: string): void => void process.stderr.write(`${line}\n`);

let pool: SubscriberPool | undefined;
let server: RunningTarget | undefined;
let pg: RunningPostgres | undefined;
let redis: RunningRedis | undefined;
let voteWorker: VoteWorker | undefined;
async function cleanup(): Promise<void> {
  pool?.close();
  await voteWorker?.stop().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  await pg?.stop().catch(() => undefined);
  await redis?.stop().catch(() => undefined);
}
installCleanup(cleanup);

// Hard bound on the whole run.
const hardLimitMs = 120_000 + rampTimeoutMs + (warmupS + durationS) * 1000 + 30_000 + drainTimeoutMs + 60_000;
const hardTimer = setTimeout(() => {
  log(`bench: hard time limit (${Math.round(hardLimitMs / 1000)} s) reached; stopping`);
  killAllTrackedSync('SIGKILL');
  process.exit(3);
}, hardLimitMs);
hardTimer.unref();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Which code was measured: HEAD, and a hash of src/ as it is on disk (others edit it live). */
function codeVersion(): { commit: string; srcHash: string; srcDirty: boolean } {
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const hash = createHash('sha1');
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, name.name);
      if (name.isDirectory()) {
        if (name.name !== 'generated') walk(full);
      } else if (name.name.endsWith('.ts')) {
        hash.update(path.relative(ROOT, full));
        hash.update(readFileSync(full));
      }
    }
  };
  try {
    walk(path.join(ROOT, 'src'));
  } catch {
    /* no src */
  }
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    srcHash: hash.digest('hex').slice(0, 12),
    srcDirty: git('status', '--porcelain', '--', 'src') !== '',
  };
}

async function main() {
  const secret = randomBytes(32).toString('hex');
  await selfTest(secret);
  const subscriberGenProc = new ProcSampler(process.pid).start();

  let databaseUrl = values['database-url'];
  if (usePostgres && databaseUrl === undefined && target === 'ovation') {
    pg = await startPostgres({ log, priority });
    databaseUrl = pg.url;
  }
  if (useRedis) redis = await startRedis({ log, priority });
  const cpuProfDir = values['cpu-prof'] ? path.join(resultsDir, 'profiles', `${stamp}-${scenario}`) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  log(`bench ${scenario}: starting ${target}`);
  server = await startTarget({
    target,
    flushMs,
    priority,
    jwtSecret: secret,
    ...(databaseUrl && target === 'ovation' ? { databaseUrl } : {}),
    ...(cpuProfDir ? { cpuProfDir } : {}),
    nodeArgs: values['server-node-arg'] ?? [],
    workers,
    env: {
      ...(redis ? { REDIS_URL: redis.url } : {}),
      ...(values['pool-size'] ? { DATABASE_POOL_SIZE: values['pool-size'] } : {}),
      ...(workers > 1 ? { WORKERS: String(workers) } : {}),
      ...Object.fromEntries(
        (values['server-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
    },
  });
  log(`SERVER_PID ${server.pid}`);
  const serverStartMs = server.startMs;
  // When the server process was spawned (startMs is how long it took to answer), for bench/gc-summary.ts.
  const serverSpawnedAt = Date.now() - server.startMs;
  log(`  ${target} ready in ${serverStartMs} ms at ${server.url}`);
  // With workers, RSS and CPU samples sum the primary and its workers.
  const serverProc = new ProcSampler(server.pid, 500, workers > 1).start();

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const setup = await setupCompetition(
    agent,
    new URL(server.graphqlUrl),
    signHs256(secret, { sub: 'bench-admin', role: 'ADMIN' }),
    submissions,
  );
  agent.destroy();
  voteWorker = await startVoteWorker();
  const voteGenProc = new ProcSampler(voteWorker.pid).start();
  await sleep(Math.max(flushMs, 100) + 300); // let the set-up's own tally flushes go out

  const poolOpts = {
    transport,
    wsUrl: server.wsUrl,
    graphqlUrl: server.graphqlUrl,
    competitionId: setup.competitionId,
    submissions,
    rampConcurrency: Number(values['ramp-concurrency']),
    rampTimeoutMs,
    log,
  };
  let ramp = { ready: 0, failed: 0, rampMs: 0 };
  if (subscribers > 0) {
    pool = new SubscriberPool({ ...poolOpts, count: subscribers });
    log(`  opening ${subscribers} ${transport} subscribers`);
    ramp = await pool.open();
    log(`  ${ramp.ready} ready, ${ramp.failed} failed in ${ramp.rampMs} ms`);
    if (ramp.ready === 0)
      throw new Error(`no subscriber became ready: ${JSON.stringify([...pool.errors]).slice(0, 2000)}`);
    await sleep(1_000);
  }
  const rssAfterRampMB = Math.round((serverProc.samples.at(-1)?.rssKb ?? 0) / 1024);

  // Warm-up: the same vote load, discarded. The first seconds of a fresh Node process run
  // unoptimised code (castVote on Ovation: ~95% CPU for 700 votes/s during the first 7 s, 66%
  // after), which is the JIT's cost, not the server's steady state. Every target gets the same.
  let warmupAcked = 0;
  const loadLabel =
    votesPerSec > 0
      ? `${votesPerSec} votes/s offered (open loop, ${voteSockets} connections at most)`
      : `max rate, ${voteConcurrency} workers`;
  const { graphqlUrl } = server;
  const worker = voteWorker;
  // Both processes start the schedule at the same epoch ms (IPC and the worker's set-up fit in the lead).
  const LEAD_MS = 500;
  const voters = (startAt: number, durationMs: number, runId: string): Promise<VoteReport> =>
    worker.run({
      graphqlUrl,
      competitionId: setup.competitionId,
      submissionIds: setup.submissionIds,
      secret,
      rate: votesPerSec,
      concurrency: voteConcurrency,
      sockets: voteSockets,
      startAt,
      durationMs,
      maxOutstanding,
      graceMs: Number(values['vote-grace']) * 1000,
      runId,
    });
  if (warmupS > 0) {
    log(`  warm-up: ${loadLabel} for ${warmupS} s (not counted)`);
    warmupAcked = (await voters(Date.now() + LEAD_MS, warmupS * 1000, `${stamp}-warmup`)).acked;
  }

  // Load. The window [loadStart, loadEnd] is the vote schedule's; CPU, deliveries and this
  // process's event-loop delay are read at its edges.
  const cpuGroups: CpuGroups = {
    server: { pid: server.pid, tree: true },
    subscriberGen: { pid: process.pid, tree: false }, // this process: its children are accounted apart
    voteGen: { pid: worker.pid, tree: true },
    postgres: pg ? { pid: pg.pid, tree: true } : undefined,
    redis: redis ? { pid: redis.pid, tree: true } : undefined,
  };
  const loadStart = Date.now() + LEAD_MS;
  const loadEnd = loadStart + durationS * 1000;
  if (pool) pool.timelineStart = loadStart;
  const subscriberLoop = new LoopDelay();
  let updates0 = 0;
  let seq0 = Number.NaN;
  let cpu0: CpuSnapshot | undefined;
  let net0: KernelNetCounters | undefined;
  const windowStarted = new Promise<void>((resolve) =>
    setTimeout(() => {
      updates0 = pool?.updates ?? 0;
      seq0 = pool?.maxSeq ?? Number.NaN;
      subscriberLoop.start();
      cpu0 = snapshotCpu(cpuGroups);
      net0 = readKernelNet();
      resolve();
    }, loadStart - Date.now()),
  );
  const windowEnded = new Promise<{
    updates: number;
    seq: number;
    cpu: CpuSnapshot;
    subscriberLoopDelayMs: LoopDelayMs;
  }>((resolve) =>
    setTimeout(() => {
      const cpu = snapshotCpu(cpuGroups);
      resolve({
        updates: pool?.updates ?? 0,
        seq: pool?.maxSeq ?? Number.NaN,
        cpu,
        subscriberLoopDelayMs: subscriberLoop.stop(),
      });
    }, loadEnd - Date.now()),
  );
  log(
    `  load: ${loadLabel} for ${durationS} s (server process time at its start: ~${loadStart - serverSpawnedAt} ms, for bench/gc-summary.ts)`,
  );
  const votes = await voters(loadStart, durationS * 1000, stamp);
  await windowStarted;
  const windowEnd = await windowEnded;
  // The worker dropped whatever was still unanswered; with it gone nothing more reaches the server.
  await worker.stop();
  voteGenProc.stop();
  const updatesAtEnd = windowEnd.updates;
  const seqAtEnd = windowEnd.seq;
  const loadMs = loadEnd - loadStart;

  // Drain: every live subscriber's latest update shows at least every acknowledged vote, and
  // nothing new arrived for a flush window (votes unanswered at the cut-off may still land).
  const drainStart = Date.now();
  const quietMs = Math.max(flushMs, 50) + 300;
  if (pool) {
    const p = pool;
    const settled = (): boolean =>
      p.below(votes.acked + warmupAcked) === 0 && Date.now() - Math.max(p.lastUpdateAt, drainStart) >= quietMs;
    while (Date.now() - drainStart < drainTimeoutMs && !settled()) await sleep(50);
  } else {
    await sleep(quietMs);
  }
  const drainMs = Date.now() - drainStart;
  const belowAckedAtDrainEnd = pool?.below(votes.acked + warmupAcked) ?? 0;

  // Probe: a fresh subscription's first frame carries the latest published seq and the count.
  const probe = new SubscriberPool({
    ...poolOpts,
    query: TALLY_PROBE_SUBSCRIPTION,
    transport: 'ws',
    count: 1,
    rampConcurrency: 1,
    rampTimeoutMs: 10_000,
    ipOffset: 65_000,
    log: undefined,
  });
  await probe.open();
  const probeOk = probe.status[0] === 1;
  let publishedSeq = probeOk ? probe.firstSeq[0]! : Number.NaN;
  let probeTotal = probeOk ? probe.lastTotal[0]! : Number.NaN;
  probe.close();
  if (!probeOk) {
    // The server could not even answer a new subscription: fall back to the newest state any
    // subscriber saw (missing seqs are then a lower bound).
    log(
      `  probe subscription failed: ${JSON.stringify([...probe.errors])}; using the newest update any subscriber saw`,
    );
    publishedSeq = Number.NEGATIVE_INFINITY;
    probeTotal = Number.NEGATIVE_INFINITY;
    if (pool) {
      for (let i = 0; i < pool.n; i++) {
        if (pool.status[i] !== 1 && pool.status[i] !== 3) continue;
        if (pool.lastSeq[i]! > publishedSeq) {
          publishedSeq = pool.lastSeq[i]!;
          probeTotal = pool.lastTotal[i]!;
        }
      }
    }
    if (!Number.isFinite(publishedSeq)) publishedSeq = probeTotal = Number.NaN;
  } else if (pool && Number.isFinite(probeTotal)) {
    // Votes answered after the grace period may have landed since: wait for their flush too.
    const p = pool;
    const t = Date.now();
    while (Date.now() - t < drainTimeoutMs && p.below(probeTotal) > 0) await sleep(50);
  }
  if (pool && pool.maxSeq > publishedSeq) {
    // Newer updates went out since the probe (votes answered late, an overloaded target still
    // working through its backlog): audit up to the newest, once its fan-out has reached everyone
    // (bounded) — not half-way through it, which would count "not yet" as missing.
    const p = pool;
    const t = Date.now();
    while (Date.now() - t < drainTimeoutMs && p.behind(p.maxSeq) > 0) await sleep(50);
    publishedSeq = p.maxSeq;
    probeTotal = Math.max(probeTotal, p.newestTotal());
  }

  const audit = pool?.audit(publishedSeq, probeTotal);
  const lostConnections = audit?.lostConnections ?? 0;
  const eventLatency = pool?.latency.summary();
  const eventErrors = pool ? Object.fromEntries(pool.errors) : {};
  const deliveredTotal = (pool?.updates ?? 0) - updates0;
  const eventTimeline = pool?.timeline ?? [];
  pool?.close();
  pool = undefined;

  serverProc.stop();
  subscriberGenProc.stop();
  // The server's average CPU over the window is in the CPU split below (same window for every process).
  const { cpuPctAvg: _sampledAvg, ...serverStats } = serverProc.stats(loadStart, loadEnd);
  // CPU over the load window per process group; "other" is what the machine spent beyond them
  // (other sessions' work would show there).
  const cpu = cpuSplit(cpu0!, windowEnd.cpu);
  const serverCpuSeconds = ((cpu.pct['server'] ?? Number.NaN) / 100) * cpu.windowS;
  const generatorCpuSeconds = (((cpu.pct['subscriberGen'] ?? 0) + (cpu.pct['voteGen'] ?? 0)) / 100) * cpu.windowS;
  const delivered = updatesAtEnd - updates0;
  // From the window's start until every vote was answered and the drain ended.
  const kernelNet = kernelNetDelta(net0, readKernelNet());
  const trust = assessTrust({
    ...(subscribers > 0 ? { subscriberLoopDelayMs: windowEnd.subscriberLoopDelayMs } : {}),
    votes,
    voteBudgetMs,
    kernelNet,
  });
  for (const reason of trust.reasons) log(`  NOT TRUSTWORTHY: ${reason}`);

  const stopWall = Date.now();
  const exit = await server.stop();
  // Everything the server printed (up to the capture limit), e.g. with NODE_OPTIONS=--trace-gc.
  if (values['server-log']) writeFileSync(values['server-log'], server.output());
  const exitWall = Date.now();
  const serverOutputTail = server.output().slice(-3000);
  server = undefined;
  await pg?.stop();
  pg = undefined;

  let profile: { whole: ProfileSummary; load: ProfileSummary } | undefined;
  if (cpuProfDir) {
    const file = readdirSync(cpuProfDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      const full = path.join(cpuProfDir, file);
      // The profile ends when the process exits; map the load window onto it from the end.
      const endWall = (stopWall + exitWall) / 2;
      profile = {
        whole: summarise(full, { top: 30 }),
        load: summarise(full, { top: 30, window: { fromEndMs: endWall - loadStart, toEndMs: endWall - loadEnd } }),
      };
    } else log(`  no .cpuprofile in ${cpuProfDir} (server exit ${JSON.stringify(exit)})`);
  }

  // Publishes during the load window, as seen by the subscribers (seq is gap-free per competition).
  const publishes = seqAtEnd - seq0;
  const result = {
    scenario,
    target,
    transport: subscribers > 0 ? transport : null,
    subscribers,
    votesPerSec: votesPerSec || 'max',
    voteConcurrency: votesPerSec > 0 ? null : Number(values['vote-concurrency']),
    durationS,
    warmupS,
    flushMs,
    database: target === 'ovation' ? (usePostgres ? 'postgres' : 'pglite') : 'memory',
    redis: useRedis,
    /** Server processes behind the port (ovation WORKERS; the primary comes on top with more than one). */
    workers,
    startedAt: new Date(loadStart).toISOString(),
    code: codeVersion(),
    priority: { server: priority, generators: os.getPriority() },
    machine: {
      nproc: os.availableParallelism(),
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? '',
    },
    setup: { serverStartMs, rampMs: ramp.rampMs, ready: ramp.ready, failed: ramp.failed },
    votes: {
      mode: votes.mode,
      offered: votes.offered,
      sent: votes.sent,
      acked: votes.acked,
      failed: votes.failed,
      notSent: votes.notSent,
      unanswered: votes.unanswered,
      /** Acknowledged, % of the votes offered (open loop: due during the schedule). */
      ackedPct: votes.offered > 0 ? round((votes.acked / votes.offered) * 100, 2) : Number.NaN,
      perSec: round(votes.acked / durationS),
      /** Keep-alive connections at most, and the latency budget they were sized for. */
      sockets: votes.sockets,
      budgetMs: votesPerSec > 0 ? voteBudgetMs : null,
      /** Open loop: from each vote's due time (a late generator or a queued request counts); closed loop: from the send. */
      latencyMs: votes.latencyMs,
      sendLagMs: votes.sendLagMs,
      serviceMs: votes.serviceMs,
      clientQueue: votes.clientQueue,
      /** By the second of the schedule each vote was due in: the opening seconds of an event. */
      perSecond: votes.perSecond,
      errors: votes.errors,
    },
    events: {
      delivered,
      perSec: Math.round(delivered / (loadMs / 1000)),
      /** Updates per watcher per second over the load, and in its slowest whole second. */
      perWatcherPerSec: ramp.ready > 0 ? round(delivered / ramp.ready / (loadMs / 1000), 2) : null,
      perWatcherPerSecMin:
        ramp.ready > 0 && durationS >= 1
          ? round(
              Math.min(
                ...Array.from({ length: Math.floor(durationS) }, (_, i) => (eventTimeline[i]?.[0] ?? 0) / ramp.ready),
              ),
              2,
            )
          : null,
      deliveredTotal,
      publishes,
      publishesPerSec: round(publishes / (loadMs / 1000)),
      demandedPerSec: Math.round((publishes * ramp.ready) / (loadMs / 1000)),
      latencyMs: eventLatency ?? null,
      publishedSeq,
      probeTotalVotes: probeTotal,
      probeFailed: !probeOk,
      /** Votes acknowledged to a voter but missing from the server's final count (must be 0). */
      ackedNotCounted: Math.max(0, votes.acked + warmupAcked - probeTotal),
      warmupAcked,
      expected: audit?.expected ?? 0,
      missing: audit?.missing ?? 0,
      subscribersWithGaps: audit?.subscribersWithGaps ?? 0,
      outOfOrder: audit?.outOfOrder ?? 0,
      staleFinal: audit?.staleFinal ?? 0,
      belowAckedAtDrainEnd,
      lostConnections,
      drainMs,
      errors: eventErrors,
    },
    server: { ...serverStats, rssAfterRampMB, exit },
    /** % of one core over the load window, per process group; other = machine busy time beyond them. */
    cpu,
    /**
     * CPU per vote acknowledged in the load window, per process group (with watchers the server's
     * includes their fan-out: subtract the nobody-watching figure to get the fan-out's share).
     */
    cpuPerVoteUs: Object.fromEntries(
      ['server', 'postgres', 'redis'].map((group) => [
        group,
        votes.acked > 0 && cpu.pct[group] !== undefined
          ? round(((cpu.pct[group] / 100) * cpu.windowS * 1e6) / votes.acked, 1)
          : null,
      ]),
    ),
    /** CPU per delivered update over the load window (target c compares the server's with raw-ws's). */
    cpuPerEventUs: {
      server: delivered > 0 ? round((serverCpuSeconds * 1e6) / delivered, 2) : null,
      generators: delivered > 0 ? round((generatorCpuSeconds * 1e6) / delivered, 2) : null,
    },
    generators: {
      subscribers: {
        pid: process.pid,
        rssPeakMB: subscriberGenProc.stats(loadStart, loadEnd).rssPeakMB,
        loopDelayMs: windowEnd.subscriberLoopDelayMs,
      },
      votes: {
        pid: worker.pid,
        rssPeakMB: voteGenProc.stats(loadStart, loadEnd).rssPeakMB,
        loopDelayMs: votes.loopDelayMs,
      },
    },
    kernelNet,
    trust,
    timeline: {
      note: 'per second from the start of the load: events [delivered, max publish→receipt ms]; server [rss MB, cpu %] (votes: votes.perSecond)',
      events: Array.from(eventTimeline, (x) => x ?? [0, 0]),
      server: serverProc.perSecond(loadStart),
    },
    profile,
    serverOutputTail: exit.code === 0 || exit.signal === 'SIGTERM' ? undefined : serverOutputTail,
  };
  return result;
}

type Result = Awaited<ReturnType<typeof main>>;

function table(r: Result): string {
  const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : String(Math.round(x)));
  const d = (x: { p50: number; p99: number; max: number }): string => `${x.p50} / ${x.p99} / ${x.max}`;
  const { votes, events, cpu } = r;
  const firstSeconds = votes.perSecond
    .slice(0, 3)
    .map((s) => `s${s.second + 1}: ${s.acked}/${s.offered} acked, p99 ${s.p99} ms`)
    .join('; ');
  const rows: [string, string][] = [
    ['scenario', r.scenario],
    ['server processes (WORKERS)', String(r.workers)],
    ['subscribers ready / failed', `${r.setup.ready} / ${r.setup.failed} (ramp ${r.setup.rampMs} ms)`],
    ['votes acked / offered (%)', `${votes.acked} / ${votes.offered} (${votes.ackedPct}%)`],
    ['  failed / unanswered / not sent', `${votes.failed} / ${votes.unanswered} / ${votes.notSent}`],
    ['votes/s acked', String(votes.perSec)],
    [
      `vote latency p50 / p99 / max ms (${votes.mode === 'open' ? 'from due time' : 'from send'})`,
      `${votes.latencyMs.p50} / ${votes.latencyMs.p99} / ${votes.latencyMs.max}`,
    ],
    ['vote latency, first seconds', firstSeconds || '–'],
    ['vote service p99 / send lag p99 ms', `${votes.serviceMs.p99} / ${votes.sendLagMs.p99}`],
    [
      'vote connections / queued client-side (wait p99 ms)',
      `${votes.sockets} / ${votes.clientQueue.votes} (${votes.clientQueue.waitMs.p99})`,
    ],
    ['publishes (seq) / per s', `${events.publishes} / ${events.publishesPerSec}`],
    ['events delivered / per s (demanded/s)', `${events.delivered} / ${events.perSec} (${events.demandedPerSec})`],
    [
      'updates per watcher per s (slowest s)',
      `${events.perWatcherPerSec ?? '–'} (${events.perWatcherPerSecMin ?? '–'})`,
    ],
    [
      'publish→receipt p50/p90/p99/max ms',
      events.latencyMs
        ? `${events.latencyMs.p50} / ${events.latencyMs.p90} / ${events.latencyMs.p99} / ${events.latencyMs.max}`
        : '–',
    ],
    [
      'missing seqs / expected (subs with gaps)',
      `${events.missing} / ${events.expected} (${events.subscribersWithGaps})`,
    ],
    ['final totalVotes != server total (subs)', String(events.staleFinal)],
    ['server total (probe) / acked not counted', `${events.probeTotalVotes} / ${events.ackedNotCounted}`],
    ['lost connections', String(events.lostConnections)],
    ['drain ms', String(events.drainMs)],
    ['server RSS peak / after ramp MB', `${r.server.rssPeakMB} / ${r.server.rssAfterRampMB}`],
    ['server CPU % peak (500 ms samples)', String(r.server.cpuPctPeak)],
    [
      'CPU % server / gen subs / gen votes / postgres / redis',
      [cpu.pct['server'], cpu.pct['subscriberGen'], cpu.pct['voteGen'], cpu.pct['postgres'], cpu.pct['redis']]
        .map(pct)
        .join(' / '),
    ],
    [
      'CPU % other / softirq / steal (100 = 1 core)',
      `${pct(cpu.otherPct)} / ${pct(cpu.softirqPct)} / ${pct(cpu.stealPct)}`,
    ],
    [
      'CPU µs per delivered event: server / generators',
      `${r.cpuPerEventUs.server ?? '–'} / ${r.cpuPerEventUs.generators ?? '–'}`,
    ],
    [
      'CPU µs per acked vote: server / postgres / redis',
      `${r.cpuPerVoteUs['server'] ?? '–'} / ${r.cpuPerVoteUs['postgres'] ?? '–'} / ${r.cpuPerVoteUs['redis'] ?? '–'}`,
    ],
    ['gen event-loop delay p50/p99/max ms: subs', d(r.generators.subscribers.loopDelayMs)],
    ['gen event-loop delay p50/p99/max ms: votes', d(r.generators.votes.loopDelayMs)],
    [
      'kernel: loopback backlog drops / listen overflows / SYN retransmits / RTOs',
      r.kernelNet
        ? `${r.kernelNet.backlogDrops} / ${r.kernelNet.listenOverflows} / ${r.kernelNet.synRetransmits} / ${r.kernelNet.retransmitTimeouts}`
        : '–',
    ],
    ['trustworthy', r.trust.trustworthy ? 'yes' : `NO: ${r.trust.reasons.join('; ')}`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}

main()
  .then((result) => {
    mkdirSync(path.dirname(outFile), { recursive: true });
    writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
    const { profile, serverOutputTail, ...brief } = result;
    process.stdout.write(JSON.stringify(brief) + '\n');
    process.stdout.write(table(result) + '\n');
    const p = profile as { load: ProfileSummary } | undefined;
    if (p) process.stdout.write(formatSummary(p.load) + '\n');
    if (serverOutputTail) process.stdout.write(`server output (tail):\n${String(serverOutputTail)}\n`);
    process.stdout.write(`results: ${path.relative(ROOT, outFile)}\n`);
    process.exit(0);
  })
  .catch(async (error: unknown) => {
    log(`bench ${scenario} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (server) log(`server output (tail):\n${server.output().slice(-3000)}`);
    await cleanup();
    process.exit(1);
  });
