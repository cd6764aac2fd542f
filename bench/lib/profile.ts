/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per module
 * (npm package, src file, node: internals, GC), optionally restricted to a time window.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  windowMs: number;
  idlePct: number;
  functions: ProfileRow[];
  modules: ProfileRow[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  const bench = url.indexOf('/bench/');
  if (bench >= 0) return url.slice(bench + 1);
  return url.replace(/^file:\/\//, '');
}

function moduleOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native/builtin)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return shortUrl(url);
}

/** Window: [fromEndMs, toEndMs] measured backwards from the profile's end (e.g. 25_000, 5_000). */
export function summarise(
  file: string,
  opts: { top?: number; window?: { fromEndMs: number; toEndMs: number } } = {},
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  let t = profile.startTime;
  const lo = opts.window ? profile.endTime - opts.window.fromEndMs * 1000 : Number.NEGATIVE_INFINITY;
  const hi = opts.window ? profile.endTime - opts.window.toEndMs * 1000 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < lo || t > hi) continue;
    // A sample's time is the gap to the next sample.
    const next = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + next);
  }
  let total = 0;
  let idle = 0;
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const name = `${frame.functionName || '(anonymous)'}${frame.url ? ` ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    const m = moduleOf(frame);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, opts.top ?? 25)
      .map(([name, us]) => ({
        name,
        selfMs: Math.round(us / 1000),
        pct: busy > 0 ? Math.round((us / busy) * 1000) / 10 : 0,
      }));
  return {
    file,
    windowMs: Math.round(total / 1000),
    idlePct: total > 0 ? Math.round((idle / total) * 1000) / 10 : 0,
    functions: rows(fn),
    modules: rows(mod),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [
    `profile ${s.file}: ${s.windowMs} ms sampled, ${s.idlePct}% idle; self time as % of busy time`,
    '  top functions:',
  ];
  for (const r of s.functions)
    lines.push(`    ${r.pct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(6)} ms  ${r.name}`);
  lines.push('  by module:');
  for (const r of s.modules)
    lines.push(`    ${r.pct.toFixed(1).padStart(5)}%  ${String(r.selfMs).padStart(6)} ms  ${r.name}`);
  return lines.join('\n');
}
