/**
 * Summarises a server's `--trace-gc-nvp` output (issue 12: what garbage collection costs during a
 * vote rush, and on which thread):
 *
 *   npx tsx bench/run.ts … --server-node-arg=--trace-gc-nvp --server-log /tmp/server.log
 *   npx tsx bench/gc-summary.ts /tmp/server.log [--from-ms N] [--to-ms N]
 *
 * Per kind (scavenge, mark-compact): count, main-thread pause p50 / max / total, and for
 * mark-compacts the main thread's incremental marking and the background threads' marking CPU,
 * which on a machine whose cores are full is taken from the server's own loop and everyone else.
 * Times are the process's milliseconds since start, as V8 prints them.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'from-ms': { type: 'string' }, 'to-ms': { type: 'string' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: npx tsx bench/gc-summary.ts SERVER_LOG [--from-ms N] [--to-ms N]');
  process.exit(2);
}
const from = Number(values['from-ms'] ?? 0);
const to = Number(values['to-ms'] ?? Infinity);

interface Gc {
  atMs: number;
  kind: string;
  fields: Map<string, number>;
}

const LINE = /\s(\d+) ms: pause=([\d.]+) mutator=[\d.]+ gc=(\w+) (.*)$/;
const gcs: Gc[] = [];
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const match = LINE.exec(line);
  if (!match) continue;
  const fields = new Map<string, number>([['pause', Number(match[2])]]);
  for (const pair of match[4]!.split(' ')) {
    const eq = pair.indexOf('=');
    if (eq > 0) fields.set(pair.slice(0, eq), Number(pair.slice(eq + 1)));
  }
  const atMs = Number(match[1]);
  if (atMs >= from && atMs <= to) gcs.push({ atMs, kind: match[3]!, fields });
}

const NAMES: Record<string, string> = { s: 'scavenge', mc: 'mark-compact', ms: 'minor mark-sweep' };
const f = (gc: Gc, key: string): number => gc.fields.get(key) ?? 0;
const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
const span = gcs.length > 1 ? (gcs[gcs.length - 1]!.atMs - gcs[0]!.atMs) / 1000 : 0;
console.log(`${gcs.length} collections over ${span.toFixed(1)} s of process time (${file})`);
for (const kind of [...new Set(gcs.map((gc) => gc.kind))]) {
  const of = gcs.filter((gc) => gc.kind === kind);
  const pauses = of.map((gc) => f(gc, 'pause')).sort((a, b) => a - b);
  const total = pauses.reduce((a, b) => a + b, 0);
  const line = [
    `${NAMES[kind] ?? kind}: ${of.length}`,
    `pause p50 ${pct(pauses, 0.5).toFixed(1)} / max ${pauses[pauses.length - 1]!.toFixed(1)} / total ${total.toFixed(0)} ms`,
  ];
  if (kind === 'mc') {
    const incremental = of.reduce((a, gc) => a + f(gc, 'incremental'), 0);
    const background = of.reduce((a, gc) => a + f(gc, 'background.mark') + f(gc, 'background.sweep'), 0);
    line.push(
      `main-thread incremental marking ${incremental.toFixed(0)} ms`,
      `background marking+sweeping ${background.toFixed(0)} ms CPU`,
    );
  }
  console.log('  ' + line.join(', '));
}
console.log('mark-compacts (at ms: pause, incremental, background CPU, heap before → after MB):');
for (const gc of gcs.filter((g) => g.kind === 'mc')) {
  const mb = (key: string): string => (f(gc, key) / 1e6).toFixed(0);
  console.log(
    `  ${gc.atMs}: ${f(gc, 'pause').toFixed(1)} ms, ${f(gc, 'incremental').toFixed(0)} ms, ` +
      `${(f(gc, 'background.mark') + f(gc, 'background.sweep')).toFixed(0)} ms, ${mb('total_size_before')} → ${mb('total_size_after')}`,
  );
}
