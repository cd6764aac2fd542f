/**
 * One benchmark scenario against one target, start to finish:
 *
 *   npx tsx bench/run.ts --target ovation|stock-yoga|raw-ws --subscribers 10000 --transport ws|sse \
 *     --votes-per-sec 500 --duration 20 --flush-ms 250 [--postgres | --database-url URL] [--cpu-prof]
 *
 * 1. starts the target as a child process (ovation with a fresh temp DATA_DIR → embedded PGlite,
 *    or on PostgreSQL), waits for /ready, creates an OPEN SIMPLE competition with a few submissions;
 * 2. opens N tallyUpdated subscribers from this process (raw ws / SSE), ramped in batches;
 * 3. drives castVote at a fixed rate (or, with --votes-per-sec 0, as fast as --vote-concurrency
 *    closed-loop workers go) for --duration seconds, one distinct voter per vote;
 * 4. drains, probes the server's latest seq with one fresh subscription, audits every subscriber
 *    (missing seqs, final totalVotes == votes acknowledged), samples server RSS/CPU every 500 ms;
 * 5. prints one JSON line and a table, writes bench/results/<timestamp>-<scenario>.json, stops
 *    every child it started by PID (also on error, signal or the hard time limit).
 *
 * Needs file descriptors: raise `ulimit -n` (>= 2 x subscribers + 1000) in the calling shell.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { installCleanup, killAllTrackedSync } from './lib/children.js';
import { selfTest, signHs256 } from './lib/jwt.js';
import { setupCompetition, TALLY_PROBE_SUBSCRIPTION } from './lib/operations.js';
import { startPostgres, type RunningPostgres } from './lib/postgres.js';
import { ProcSampler, readMachineCpu, treeCpuSeconds } from './lib/proc.js';
import { formatSummary, summarise, type ProfileSummary } from './lib/profile.js';
import { round } from './lib/stats.js';
import { SubscriberPool, type Transport } from './lib/subscribers.js';
import { ROOT, startTarget, TARGETS, type RunningTarget, type TargetName } from './lib/targets.js';
import { runVoters } from './lib/voters.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'ovation' },
    transport: { type: 'string', default: 'ws' },
    subscribers: { type: 'string', default: '1000' },
    'votes-per-sec': { type: 'string', default: '200' },
    'vote-concurrency': { type: 'string', default: '64' },
    'vote-connections': { type: 'string', default: '16' },
    'max-outstanding': { type: 'string', default: '2000' },
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
    'pool-size': { type: 'string' },
    'server-env': { type: 'string', multiple: true },
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
      '  --votes-per-sec R          fixed vote rate (default 200); 0 = max rate, closed loop',
      '  --vote-concurrency C       workers at max rate (default 64)',
      '  --vote-connections K       keep-alive connections at a fixed rate (default 16)',
      '  --duration S               seconds of load (default 20, at most 60)',
      '  --warmup S                 seconds of the same vote load before the measured window, not counted (default 0)',
      '  --flush-ms F               ovation TALLY_FLUSH_MS (0 → 1); references: coalescing window, 0 = publish every vote',
      '  --submissions S            submissions in the competition (default 4)',
      '  --postgres                 ovation on a throwaway PostgreSQL 15 (else embedded PGlite)',
      '  --database-url URL         ovation on this PostgreSQL instead',
      '  --pool-size N              ovation DATABASE_POOL_SIZE',
      '  --server-env KEY=VALUE     extra environment for the server (repeatable)',
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
for (const [k, v] of Object.entries({ subscribers, votesPerSec, durationS, flushMs, submissions })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad --${k}`);
}
// Each subscriber is one descriptor here and one in the server (which inherits this limit).
try {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = Number(/Max open files\s+(\d+)/.exec(limits)?.[1]);
  if (Number.isFinite(soft) && soft < subscribers + 1024) {
    process.stderr.write(
      `bench: open-file limit ${soft} is too low for ${subscribers} subscribers; run \`ulimit -n 65536\` (or the hard limit) in this shell first\n`,
    );
    process.exit(2);
  }
} catch {
  /* not Linux */
}
const usePostgres = values.postgres || values['database-url'] !== undefined;
const scenario =
  values.scenario ??
  `${target}-${subscribers > 0 ? `${transport}-${subscribers}subs` : 'nosubs'}-${votesPerSec > 0 ? `${votesPerSec}vps` : `max${values['vote-concurrency']}c`}-f${flushMs}${target === 'ovation' ? (usePostgres ? '-pg' : '-pglite') : ''}`;
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = path.join(ROOT, 'bench', 'results');
const outFile = values.out ?? path.join(resultsDir, `${stamp}-${scenario}.json`);

const log = (line: string): void => void process.stderr.write(`${line}\n`);

let pool: SubscriberPool | undefined;
let server: RunningTarget | undefined;
let pg: RunningPostgres | undefined;
async function cleanup(): Promise<void> {
  pool?.close();
  await server?.stop().catch(() => undefined);
  await pg?.stop().catch(() => undefined);
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
  return { commit: git('rev-parse', '--short', 'HEAD'), srcHash: hash.digest('hex').slice(0, 12), srcDirty: git('status', '--porcelain', '--', 'src') !== '' };
}

async function main(): Promise<Record<string, unknown>> {
  const secret = randomBytes(32).toString('hex');
  await selfTest(secret);
  const loadgen = new ProcSampler(process.pid).start();

  let databaseUrl = values['database-url'];
  if (values.postgres && target === 'ovation') {
    pg = await startPostgres({ log, priority });
    databaseUrl = pg.url;
  }
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
    env: {
      ...(values['pool-size'] ? { DATABASE_POOL_SIZE: values['pool-size'] } : {}),
      ...Object.fromEntries((values['server-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    },
  });
  log(`SERVER_PID ${server.pid}`);
  const serverStartMs = server.startMs;
  log(`  ${target} ready in ${serverStartMs} ms at ${server.url}`);
  const serverProc = new ProcSampler(server.pid).start();

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const setup = await setupCompetition(agent, new URL(server.graphqlUrl), signHs256(secret, { sub: 'bench-admin', role: 'ADMIN' }), submissions);
  agent.destroy();
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
    if (ramp.ready === 0) throw new Error(`no subscriber became ready: ${JSON.stringify([...pool.errors]).slice(0, 2000)}`);
    await sleep(1_000);
  }
  const rssAfterRampMB = Math.round((serverProc.samples.at(-1)?.rssKb ?? 0) / 1024);

  // Warm-up: the same vote load, discarded. The first seconds of a fresh Node process run
  // unoptimised code (castVote on Ovation: ~95% CPU for 700 votes/s during the first 7 s, 66%
  // after), which is the JIT's cost, not the server's steady state. Every target gets the same.
  let warmupAcked = 0;
  const loadLabel = votesPerSec > 0 ? `${votesPerSec} votes/s` : `max rate, ${values['vote-concurrency']} workers`;
  const { graphqlUrl } = server;
  const voters = (durationMs: number, runId: string): ReturnType<typeof runVoters> =>
    runVoters({
      graphqlUrl,
      competitionId: setup.competitionId,
      submissionIds: setup.submissionIds,
      secret,
      rate: votesPerSec,
      concurrency: Number(values['vote-concurrency']),
      connections: Number(values['vote-connections']),
      durationMs,
      maxOutstanding: Number(values['max-outstanding']),
      graceMs: Number(values['vote-grace']) * 1000,
      runId,
    });
  if (warmupS > 0) {
    log(`  warm-up: ${loadLabel} for ${warmupS} s (not counted)`);
    warmupAcked = (await voters(warmupS * 1000, `${stamp}-warmup`)).acked;
  }

  // Load.
  const updates0 = pool?.updates ?? 0;
  const seq0 = pool?.maxSeq ?? Number.NaN;
  let seqAtEnd = Number.NaN;
  let updatesAtEnd = 0;
  const cpu0 = process.cpuUsage();
  let cpuLoad = cpu0;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const machine0 = readMachineCpu();
  let machineLoad = machine0;
  const pgPid = pg?.pid;
  const pgCpu0 = pgPid ? treeCpuSeconds(pgPid) : 0;
  let pgCpuEnd = pgCpu0;
  const loadStart = Date.now();
  if (pool) pool.timelineStart = loadStart;
  const endTimer = setTimeout(() => {
    updatesAtEnd = pool?.updates ?? 0;
    seqAtEnd = pool?.maxSeq ?? Number.NaN;
    cpuLoad = process.cpuUsage(cpu0);
    machineLoad = readMachineCpu();
    if (pgPid) pgCpuEnd = treeCpuSeconds(pgPid);
  }, durationS * 1000);
  log(`  load: ${loadLabel} for ${durationS} s`);
  const votes = await voters(durationS * 1000, stamp);
  const loadEnd = Math.max(votes.endedAt, loadStart + durationS * 1000);
  if (Date.now() < loadStart + durationS * 1000) await sleep(loadStart + durationS * 1000 - Date.now() + 5);
  clearTimeout(endTimer);
  loopDelay.disable();
  if (updatesAtEnd === 0) {
    updatesAtEnd = pool?.updates ?? 0;
    seqAtEnd = pool?.maxSeq ?? Number.NaN;
  }
  const loadMs = loadEnd - loadStart;

  // Drain: every live subscriber's latest update shows at least every acknowledged vote, and
  // nothing new arrived for a flush window (votes unanswered at the cut-off may still land).
  const drainStart = Date.now();
  const quietMs = Math.max(flushMs, 50) + 300;
  if (pool) {
    const p = pool;
    const settled = (): boolean => p.below(votes.acked + warmupAcked) === 0 && Date.now() - Math.max(p.lastUpdateAt, drainStart) >= quietMs;
    while (Date.now() - drainStart < drainTimeoutMs && !settled()) await sleep(50);
  } else {
    await sleep(quietMs);
  }
  const drainMs = Date.now() - drainStart;
  const belowAckedAtDrainEnd = pool?.below(votes.acked + warmupAcked) ?? 0;

  // Probe: a fresh subscription's first frame carries the latest published seq and the count.
  const probe = new SubscriberPool({ ...poolOpts, query: TALLY_PROBE_SUBSCRIPTION, transport: 'ws', count: 1, rampConcurrency: 1, rampTimeoutMs: 10_000, ipOffset: 65_000, log: undefined });
  await probe.open();
  const probeOk = probe.status[0] === 1;
  let publishedSeq = probeOk ? probe.firstSeq[0]! : Number.NaN;
  let probeTotal = probeOk ? probe.lastTotal[0]! : Number.NaN;
  probe.close();
  if (!probeOk) {
    // The server could not even answer a new subscription: fall back to the newest state any
    // subscriber saw (missing seqs are then a lower bound).
    log(`  probe subscription failed: ${JSON.stringify([...probe.errors])}; using the newest update any subscriber saw`);
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
  loadgen.stop();
  const serverStats = serverProc.stats(loadStart, loadEnd);
  const loadgenStats = loadgen.stats(loadStart, loadEnd);
  const loadgenCpuPct = ((cpuLoad.user + cpuLoad.system) / 1000 / (durationS * 1000)) * 100;
  // Everything else on the machine during the load (other sessions' tests would show here).
  const perSec = (a: number, b: number): number => ((b - a) / (durationS || 1)) * 100;
  const machineBusyPct = perSec(machine0.busy, machineLoad.busy);
  const postgresCpuPct = pgPid ? Math.round(perSec(pgCpu0, pgCpuEnd)) : null;
  const otherCpuPct = Math.max(0, Math.round(machineBusyPct - loadgenCpuPct - serverStats.cpuPctAvg - (postgresCpuPct ?? 0)));
  const kernelIrqPct = Math.round(perSec(machine0.irq, machineLoad.irq));
  const stealPct = Math.round(perSec(machine0.steal, machineLoad.steal));

  const stopWall = Date.now();
  const exit = await server.stop();
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
    startedAt: new Date(loadStart).toISOString(),
    code: codeVersion(),
    priority: { server: priority, loadgen: os.getPriority() },
    machine: { nproc: os.availableParallelism(), memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, cpu: os.cpus()[0]?.model ?? '' },
    setup: { serverStartMs, rampMs: ramp.rampMs, ready: ramp.ready, failed: ramp.failed },
    votes: {
      sent: votes.sent,
      acked: votes.acked,
      failed: votes.failed,
      notSent: votes.notSent,
      unanswered: votes.unanswered,
      perSec: round(votes.acked / ((votes.endedAt - votes.startedAt) / 1000)),
      latencyMs: votes.latency.summary(),
      errors: Object.fromEntries(votes.errors),
    },
    events: {
      delivered: updatesAtEnd - updates0,
      perSec: Math.round((updatesAtEnd - updates0) / (loadMs / 1000)),
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
    postgresCpuPct,
    otherCpuPct,
    kernelIrqPct,
    stealPct,
    loadgen: {
      cpuPctAvg: Math.round(loadgenCpuPct),
      rssPeakMB: loadgenStats.rssPeakMB,
      eventLoopDelayMs: { p50: round(loopDelay.percentile(50) / 1e6), p99: round(loopDelay.percentile(99) / 1e6), max: round(loopDelay.max / 1e6) },
    },
    timeline: {
      note: 'per second from the start of the load: votes [acked, max latency ms]; events [delivered, max publish→receipt ms]; server [rss MB, cpu %]',
      votes: votes.timeline.map((x) => x ?? [0, 0]),
      events: Array.from(eventTimeline, (x) => x ?? [0, 0]),
      server: serverProc.perSecond(loadStart),
    },
    profile,
    serverOutputTail: exit.code === 0 || exit.signal === 'SIGTERM' ? undefined : serverOutputTail,
  };
  return result;
}

function table(r: Record<string, unknown>): string {
  const get = (p: string): unknown => p.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], r);
  const rows: [string, string][] = [
    ['scenario', String(r['scenario'])],
    ['subscribers ready / failed', `${get('setup.ready')} / ${get('setup.failed')} (ramp ${get('setup.rampMs')} ms)`],
    [
      'votes acked / sent (failed, unanswered, not sent)',
      `${get('votes.acked')} / ${get('votes.sent')} (${get('votes.failed')}, ${get('votes.unanswered')}, ${get('votes.notSent')})`,
    ],
    ['votes/s achieved', String(get('votes.perSec'))],
    ['vote latency p50 / p99 / max ms', `${get('votes.latencyMs.p50')} / ${get('votes.latencyMs.p99')} / ${get('votes.latencyMs.max')}`],
    ['publishes (seq) / per s', `${get('events.publishes')} / ${get('events.publishesPerSec')}`],
    ['events delivered / per s (demanded/s)', `${get('events.delivered')} / ${get('events.perSec')} (${get('events.demandedPerSec')})`],
    [
      'publish→receipt p50/p90/p99/max ms',
      `${get('events.latencyMs.p50')} / ${get('events.latencyMs.p90')} / ${get('events.latencyMs.p99')} / ${get('events.latencyMs.max')}`,
    ],
    ['missing seqs / expected (subs with gaps)', `${get('events.missing')} / ${get('events.expected')} (${get('events.subscribersWithGaps')})`],
    ['final totalVotes != server total (subs)', String(get('events.staleFinal'))],
    ['server total (probe) / acked not counted', `${get('events.probeTotalVotes')} / ${get('events.ackedNotCounted')}`],
    ['lost connections', String(get('events.lostConnections'))],
    ['drain ms', String(get('events.drainMs'))],
    ['server RSS peak / after ramp MB', `${get('server.rssPeakMB')} / ${get('server.rssAfterRampMB')}`],
    ['server CPU % avg / peak (100 = 1 core)', `${get('server.cpuPctAvg')} / ${get('server.cpuPctPeak')}`],
    ['postgres CPU % (all backends)', String(get('postgresCpuPct') ?? '–')],
    ['loadgen CPU % / RSS MB', `${get('loadgen.cpuPctAvg')} / ${get('loadgen.rssPeakMB')}`],
    ['other processes / softirq / steal CPU %', `${get('otherCpuPct')} / ${get('kernelIrqPct')} / ${get('stealPct')}`],
    ['loadgen event-loop delay p99 / max ms', `${get('loadgen.eventLoopDelayMs.p99')} / ${get('loadgen.eventLoopDelayMs.max')}`],
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
