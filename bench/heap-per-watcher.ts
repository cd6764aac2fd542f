/**
 * Heap per watcher: what one more graphql-ws (or SSE) tally subscription keeps alive in the
 * compiled server, measured as V8 sees it after a full GC (not RSS, which also holds garbage and
 * the allocator's slack). The server runs with --expose-gc and a preload that, on SIGUSR2, collects
 * twice and prints `HEAP <heapUsed>`; the tool opens --base watchers, reads the heap, opens --more,
 * reads it again, and divides the difference by --more.
 *
 *   npx tsx bench/heap-per-watcher.ts [--transport ws|sse] [--base 1000] [--more 3000] [--snapshots DIR]
 *
 * --snapshots DIR also writes a heap snapshot at both points (--heapsnapshot-signal), to compare
 * by constructor: what each watcher holds.
 * Embedded PGlite (its WebAssembly memory is not in V8's heap) unless --database-url is given.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { installCleanup } from './lib/children.js';
import { getStatus } from './lib/http.js';
import { signHs256 } from './lib/jwt.js';
import { setupCompetition } from './lib/operations.js';
import { SubscriberPool, type Transport } from './lib/subscribers.js';
import { startTarget } from './lib/targets.js';

const { values } = parseArgs({
  options: {
    transport: { type: 'string', default: 'ws' },
    base: { type: 'string', default: '1000' },
    more: { type: 'string', default: '3000' },
    'database-url': { type: 'string' },
    snapshots: { type: 'string' },
  },
});
const transport = values.transport as Transport;
const base = Number(values.base);
const more = Number(values.more);

const PRELOAD = `data:text/javascript,${encodeURIComponent(
  "process.on('SIGUSR2', () => { globalThis.gc(); globalThis.gc(); process.stderr.write('HEAP ' + process.memoryUsage().heapUsed + '\\n'); });",
)}`;

installCleanup();
const secret = 'heap-per-watcher-secret-0123456789abcdef';
const server = await startTarget({
  target: 'ovation',
  flushMs: 250,
  jwtSecret: secret,
  nodeArgs: [
    '--expose-gc',
    `--import=${PRELOAD}`,
    ...(values.snapshots ? ['--heapsnapshot-signal=SIGUSR1', `--diagnostic-dir=${values.snapshots}`] : []),
  ],
  ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}),
});

/** Signals the server and waits for the next HEAP line it prints. */
async function heapUsed(): Promise<number> {
  const seen = server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('HEAP ')).length;
  process.kill(server.pid, 'SIGUSR2');
  for (let i = 0; i < 200; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('HEAP '));
    if (lines.length > seen) {
      if (values.snapshots) {
        process.kill(server.pid, 'SIGUSR1');
        // Written on the server's loop, which answers nothing meanwhile: /health answers once it is on disk.
        if ((await getStatus(`${server.url}/health`, 300_000)) !== 200)
          throw new Error('no /health after the snapshot');
      }
      return Number(lines.at(-1)!.slice(5));
    }
  }
  throw new Error('the server printed no HEAP line');
}

const pools: SubscriberPool[] = [];
try {
  const agent = new http.Agent({ keepAlive: true });
  const setup = await setupCompetition(
    agent,
    new URL(server.graphqlUrl),
    signHs256(secret, { sub: 'heap-admin', role: 'ADMIN' }),
    3,
  );
  const open = async (count: number, ipOffset: number): Promise<void> => {
    const pool = new SubscriberPool({
      transport,
      wsUrl: server.wsUrl,
      graphqlUrl: server.graphqlUrl,
      competitionId: setup.competitionId,
      submissions: 3,
      count,
      rampConcurrency: 200,
      rampTimeoutMs: 120_000,
      ipOffset,
    });
    pools.push(pool);
    const { ready, failed } = await pool.open();
    if (ready !== count) throw new Error(`${failed} of ${count} watchers failed to open`);
  };
  await open(base, 0);
  const before = await heapUsed();
  await open(more, base);
  const after = await heapUsed();
  const perWatcher = (after - before) / more;
  console.log(
    `${transport}: heap ${(before / 1e6).toFixed(1)} MB with ${base} watchers, ${(after / 1e6).toFixed(1)} MB with ${base + more}: ${Math.round(perWatcher)} bytes per watcher`,
  );
} finally {
  for (const pool of pools) pool.close();
  await server.stop();
}
