/**
 * The soak (issue 15): two instances on one PostgreSQL and one Redis (started here, on 127.0.0.1,
 * stopped at the end), steady votes, reactions, messages and churned connections for --duration
 * seconds; RSS, file descriptors and Redis used_memory sampled, each with its slope per minute
 * after --warmup (bench/lib/soak.ts). Exits 1 if any operation failed.
 *
 *   npm run soak -- --duration 600 [--warmup 60] [--sample-every 5] [--votes-per-sec 5]
 *     [--reactions-per-sec 5] [--messages-per-sec 2] [--watchers 50] [--churn-per-sec 5] [--json FILE]
 *
 * The default rates are what the shared 2-core development machine carries with every operation
 * answered (at 20 votes + 20 reactions a second, with other work on it, operations took 15–20 s
 * and some failed on time-outs): the soak looks for leaks, not for throughput (BENCHMARKS.md).
 *
 * The instances run with the test servers' settings (test/support/server-process.ts: high rate
 * limits, so the steady load is never refused; NODE_ENV=test; the test JWT secret).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startCluster } from '../test/support/cluster.js';
import { runSoak } from './lib/soak.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    warmup: { type: 'string', default: '60' },
    'sample-every': { type: 'string', default: '5' },
    'votes-per-sec': { type: 'string', default: '5' },
    'reactions-per-sec': { type: 'string', default: '5' },
    'messages-per-sec': { type: 'string', default: '2' },
    watchers: { type: 'string', default: '50' },
    'churn-per-sec': { type: 'string', default: '5' },
    json: { type: 'string' },
  },
});
const num = (name: keyof typeof values): number => {
  const value = Number(values[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number ≥ 0`);
  return value;
};

const cluster = await startCluster();
let errors: number;
try {
  const report = await runSoak({
    instances: [
      { name: 'a', graphqlUrl: cluster.a.graphqlUrl, wsUrl: cluster.a.wsUrl, pid: cluster.a.pid },
      { name: 'b', graphqlUrl: cluster.b.graphqlUrl, wsUrl: cluster.b.wsUrl, pid: cluster.b.pid },
    ],
    redisUrl: cluster.redisUrl,
    durationS: num('duration'),
    warmupS: num('warmup'),
    sampleEveryS: num('sample-every'),
    votesPerSec: num('votes-per-sec'),
    reactionsPerSec: num('reactions-per-sec'),
    messagesPerSec: num('messages-per-sec'),
    watchers: num('watchers'),
    churnPerSec: num('churn-per-sec'),
    log: (line) => console.log(line),
  });
  const { samples, ...summary } = report;
  console.log(JSON.stringify(summary, null, 2));
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  errors = report.errors;
  if (errors > 0)
    for (const x of [cluster.a, cluster.b])
      console.log(
        `[soak] ${x.url}:\n${x
          .output()
          .split('\n')
          .filter((l) => l.includes(`"level":"error"`))
          .slice(0, 5)
          .join('\n')}`,
      );
} finally {
  await cluster.stop();
}
process.exit(errors > 0 ? 1 : 0);
