/**
 * graphql-sse single-connection fan-out: N streams (one reservation each, one tallyUpdated
 * operation per stream) watching one competition while votes arrive at a fixed rate; reports
 * events delivered per second and the server's CPU over the window. A quick comparison tool for
 * the transport (src/transport/graphql-sse*.ts), not part of the suite; results are not recorded.
 *
 *   npx tsx bench/graphql-sse-fanout.ts [--root DIR] [--subscribers 2000] [--votes-per-sec 200]
 *     [--flush-ms 20] [--duration 15] [--warmup 3]
 *
 * --root runs another checkout's sources (e.g. an older commit exported with `git archive`, with
 * node_modules and src/generated copied or linked in), so two implementations can be compared on
 * the same machine. Everything listens on 127.0.0.1; the server child is stopped by PID at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { clientIp, getStatus, post } from './lib/http.js';
import { signHs256 } from './lib/jwt.js';
import { CAST_VOTE, setupCompetition, TALLY_SUBSCRIPTION } from './lib/operations.js';
import { cpuSeconds } from './lib/proc.js';
import { freePort, ROOT } from './lib/targets.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: ROOT },
    subscribers: { type: 'string', default: '2000' },
    'votes-per-sec': { type: 'string', default: '200' },
    'flush-ms': { type: 'string', default: '20' },
    duration: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
  },
});
const root = path.resolve(values.root);
const subscribers = Number(values.subscribers);
const votesPerSec = Number(values['votes-per-sec']);
const durationS = Math.min(60, Number(values.duration));
const warmupS = Math.min(30, Number(values.warmup));
const SECRET = 'bench-secret-bench-secret-bench-secret-0123';
const NEXT = Buffer.from('event: next');

const port = await freePort();
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-gsse-bench-'));
const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
  cwd: root,
  env: {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    JWT_SECRET: SECRET,
    TALLY_FLUSH_MS: values['flush-ms'],
    TRUST_PROXY: 'true',
    FRAUD_DETECTION_ENABLED: 'false',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const url = `http://127.0.0.1:${port}`;
const streams: http.ClientRequest[] = [];
const cleanup = async (): Promise<void> => {
  for (const req of streams) req.destroy();
  if (server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  await rm(dataDir, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  const deadline = Date.now() + 120_000;
  while ((await getStatus(`${url}/ready`)) !== 200) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error('server did not get ready');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const control = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const graphqlUrl = new URL(`${url}/graphql`);
  const streamUrl = new URL(`${url}/graphql/stream`);
  const { competitionId, submissionIds } = await setupCompetition(
    control,
    graphqlUrl,
    signHs256(SECRET, { sub: 'bench-admin', role: 'ADMIN' }),
    4,
  );

  let events = 0;
  const reserve = (ip: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: control,
          host: '127.0.0.1',
          port,
          path: streamUrl.pathname,
          method: 'PUT',
          headers: { 'x-forwarded-for': ip },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () =>
            res.statusCode === 201 ? resolve(text) : reject(new Error(`PUT ${res.statusCode}: ${text}`)),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  /** One stream; resolves once its first event (the current standings) arrived. */
  const open = (i: number): Promise<void> =>
    (async () => {
      const ip = clientIp('subscriber', i);
      const token = await reserve(ip);
      let first!: () => void;
      const firstEvent = new Promise<void>((resolve) => (first = resolve));
      const req = http.request(
        {
          agent: false,
          host: '127.0.0.1',
          port,
          path: streamUrl.pathname,
          headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token, 'x-forwarded-for': ip },
        },
        (res) => {
          let tail: Buffer = Buffer.alloc(0);
          res.on('data', (chunk: Buffer) => {
            const text = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
            let n = 0;
            for (let at = text.indexOf(NEXT); at !== -1; at = text.indexOf(NEXT, at + NEXT.length)) n += 1;
            tail = text.subarray(Math.max(0, text.length - (NEXT.length - 1)));
            if (n > 0) {
              events += n;
              first();
            }
          });
        },
      );
      req.on('error', () => undefined);
      req.end();
      streams.push(req);
      const body = JSON.stringify({
        query: TALLY_SUBSCRIPTION,
        variables: { competitionId },
        extensions: { operationId: `tally-${i}` },
      });
      const answer = await post(control, streamUrl, body, {
        'x-graphql-event-stream-token': token,
        'x-forwarded-for': ip,
        accept: '*/*',
      });
      if (answer.status !== 202) throw new Error(`POST ${answer.status}: ${answer.text}`);
      await firstEvent;
    })();
  for (let start = 0; start < subscribers; start += 100) {
    await Promise.all(Array.from({ length: Math.min(100, subscribers - start) }, (_, k) => open(start + k)));
  }

  // Open loop: one distinct voter per vote, at most 2,000 unanswered.
  let voter = 0;
  let acked = 0;
  let outstanding = 0;
  let failed = 0;
  const votes = setInterval(() => {
    if (outstanding >= 2_000) return;
    const i = (voter += 1);
    outstanding += 1;
    const body = JSON.stringify({
      query: CAST_VOTE,
      variables: { input: { competitionId, submissionId: submissionIds[i % submissionIds.length] } },
    });
    post(control, graphqlUrl, body, {
      authorization: `Bearer ${signHs256(SECRET, { sub: `bench-voter-${i}` })}`,
      'x-forwarded-for': clientIp('voter', i),
    }).then(
      (r) => {
        outstanding -= 1;
        if (r.status === 200 && !r.text.includes('"errors"')) acked += 1;
        else if ((failed += 1) === 1) process.stderr.write(`first refused vote: ${r.status} ${r.text.slice(0, 300)}\n`);
      },
      () => (outstanding -= 1),
    );
  }, 1000 / votesPerSec);

  await new Promise((resolve) => setTimeout(resolve, warmupS * 1000));
  const [cpu0, events0, acked0, t0] = [cpuSeconds(server.pid!, false), events, acked, Date.now()];
  await new Promise((resolve) => setTimeout(resolve, durationS * 1000));
  const [cpu1, events1, acked1, t1] = [cpuSeconds(server.pid!, false), events, acked, Date.now()];
  clearInterval(votes);
  const seconds = (t1 - t0) / 1000;
  const eventsPerSec = (events1 - events0) / seconds;
  process.stdout.write(
    `${JSON.stringify({
      root,
      subscribers,
      votesPerSec: Math.round(((acked1 - acked0) / seconds) * 10) / 10,
      votesRefused: failed,
      eventsPerSec: Math.round(eventsPerSec),
      updatesPerStream: Math.round((eventsPerSec / subscribers) * 10) / 10,
      serverCpuPct: Math.round(((cpu1 - cpu0) / seconds) * 1000) / 10,
      serverCpuMsPer1kEvents: Math.round((((cpu1 - cpu0) * 1000 * 1000) / Math.max(1, events1 - events0)) * 100) / 100,
      loadavg: os.loadavg().map((l) => Math.round(l * 10) / 10),
    })}\n`,
  );
} finally {
  await cleanup();
}
