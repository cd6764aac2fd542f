/**
 * Samples a process's RSS (/proc/<pid>/status VmRSS) and CPU (/proc/<pid>/stat utime+stime)
 * every `intervalMs`. Linux only. CPU% is of one core (200% = both cores of this machine).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* 100 on every Linux this runs on */
}

export interface ProcSample {
  t: number;
  rssKb: number;
  cpuSeconds: number;
}

export function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime = field 14, stime = field 15.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { t: Date.now(), rssKb: m ? Number(m[1]) : 0, cpuSeconds: (utime + stime) / clkTck };
  } catch {
    return undefined;
  }
}

export interface WindowStats {
  rssPeakMB: number;
  rssEndMB: number;
  cpuPctAvg: number;
  cpuPctPeak: number;
}

/** RSS and CPU of `root` and its live descendants (a cluster primary and its workers), summed. */
export function readProcTree(root: number): ProcSample | undefined {
  let sum: ProcSample | undefined;
  for (const pid of processTree(root)) {
    const s = readProc(pid);
    if (s) sum = sum ? { t: s.t, rssKb: sum.rssKb + s.rssKb, cpuSeconds: sum.cpuSeconds + s.cpuSeconds } : s;
  }
  return sum;
}

export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly pid: number,
    private readonly intervalMs = 500,
    /** Sum over the process tree (a replaced worker's CPU drops out: per-second figures only). */
    private readonly tree = false,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    const s = this.tree ? readProcTree(this.pid) : readProc(this.pid);
    if (s) this.samples.push(s);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  /** [rss MB, cpu %] per second from `from` (ms epoch) on. */
  perSecond(from: number): [number, number][] {
    const out: [number, number][] = [];
    const pts = this.samples.filter((x) => x.t >= from);
    for (let i = 1; i < pts.length; i++) {
      const a = pts[i - 1]!;
      const b = pts[i]!;
      const sec = Math.floor((b.t - from) / 1000);
      const cpu = b.t > a.t ? Math.round(((b.cpuSeconds - a.cpuSeconds) / ((b.t - a.t) / 1000)) * 100) : 0;
      const slot = (out[sec] ??= [0, 0]);
      slot[0] = Math.max(slot[0], Math.round(b.rssKb / 1024));
      slot[1] = Math.max(slot[1], cpu);
    }
    return Array.from(out, (x) => x ?? [0, 0]);
  }

  /** Peak RSS over the whole run; CPU averaged over [from, to] (ms epoch). */
  stats(from: number, to: number): WindowStats {
    const all = this.samples;
    const rssPeakKb = all.reduce((m, s) => Math.max(m, s.rssKb), 0);
    const inWindow = all.filter((s) => s.t >= from - this.intervalMs && s.t <= to + this.intervalMs);
    let cpuPctAvg = Number.NaN;
    let cpuPctPeak = Number.NaN;
    if (inWindow.length >= 2) {
      const a = inWindow[0]!;
      const b = inWindow[inWindow.length - 1]!;
      cpuPctAvg = ((b.cpuSeconds - a.cpuSeconds) / ((b.t - a.t) / 1000)) * 100;
      cpuPctPeak = 0;
      for (let i = 1; i < inWindow.length; i++) {
        const p = inWindow[i - 1]!;
        const c = inWindow[i]!;
        if (c.t > p.t) cpuPctPeak = Math.max(cpuPctPeak, ((c.cpuSeconds - p.cpuSeconds) / ((c.t - p.t) / 1000)) * 100);
      }
    }
    const last = all[all.length - 1];
    return {
      rssPeakMB: Math.round(rssPeakKb / 1024),
      rssEndMB: Math.round((last?.rssKb ?? 0) / 1024),
      cpuPctAvg: Math.round(cpuPctAvg),
      cpuPctPeak: Math.round(cpuPctPeak),
    };
  }
}

/**
 * Whole-machine CPU seconds from /proc/stat, summed over all cores: busy (user+nice+system, i.e.
 * time spent by processes), softirq+irq (kernel network processing, e.g. loopback TCP, largely not
 * charged to any process), steal (taken by the hypervisor), total.
 */
export function readMachineCpu(): { busy: number; irq: number; steal: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number): number => v[i] ?? 0;
    const total = at(0) + at(1) + at(2) + at(3) + at(4) + at(5) + at(6) + at(7);
    return {
      busy: (at(0) + at(1) + at(2)) / clkTck,
      irq: (at(5) + at(6)) / clkTck,
      steal: at(7) / clkTck,
      total: total / clkTck,
    };
  } catch {
    return { busy: Number.NaN, irq: Number.NaN, steal: Number.NaN, total: Number.NaN };
  }
}

interface StatCpu {
  ppid: number;
  /** utime + stime of the process (all its threads), seconds. */
  own: number;
  /** cutime + cstime: its children that have exited and been waited for, seconds. */
  reaped: number;
}

function readStatCpu(pid: number): StatCpu | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')';
    // f[1] = ppid (field 4), f[11..14] = utime, stime, cutime, cstime (fields 14-17).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(f[1]),
      own: (Number(f[11]) + Number(f[12])) / clkTck,
      reaped: (Number(f[13]) + Number(f[14])) / clkTck,
    };
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` from /proc/<pid>/task/<tid>/children (every thread's), or undefined if unsupported. */
function childrenOf(pid: number): number[] | undefined {
  try {
    const out: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c) out.push(Number(c));
    }
    return out;
  } catch {
    return undefined;
  }
}

/** `root` and its live descendants. */
function processTree(root: number): number[] {
  const direct = childrenOf(root);
  if (direct) {
    const tree = [root];
    for (let i = 0; i < tree.length && tree.length < 10_000; i++)
      tree.push(...(i === 0 ? direct : (childrenOf(tree[i]!) ?? [])));
    return tree;
  }
  // No children files (kernel without CONFIG_PROC_CHILDREN): scan /proc for parent links.
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStatCpu(Number(name));
    if (st) parent.set(Number(name), st.ppid);
  }
  return [...parent.keys()].filter((pid) => {
    let p: number | undefined = pid;
    for (let depth = 0; p !== undefined && p > 1 && depth < 32; depth++) {
      if (p === root) return true;
      p = parent.get(p);
    }
    return false;
  });
}

/**
 * CPU seconds used so far by `root` and all its descendants, the ones that have exited included:
 * each live process's own time plus what its exited children left in its cutime/cstime. So the
 * difference of two readings is exact even when, say, a PostgreSQL backend ends in between
 * (its time moves from itself to the postmaster's cutime). With `tree` false, `root` alone.
 */
export function cpuSeconds(root: number, tree = true): number {
  let total = 0;
  let found = false;
  for (const pid of tree ? processTree(root) : [root]) {
    const st = readStatCpu(pid);
    if (!st) continue;
    found = true;
    total += tree ? st.own + st.reaped : st.own;
  }
  return found ? total : Number.NaN;
}

/** The processes whose CPU a run accounts for apart, by name (e.g. server, postgres). */
export type CpuGroups = Record<string, { pid: number; tree: boolean } | undefined>;

export interface CpuSnapshot {
  t: number;
  machine: ReturnType<typeof readMachineCpu>;
  groups: Record<string, number>;
}

export function snapshotCpu(groups: CpuGroups): CpuSnapshot {
  const out: Record<string, number> = {};
  for (const [name, g] of Object.entries(groups)) if (g) out[name] = cpuSeconds(g.pid, g.tree);
  return { t: Date.now(), machine: readMachineCpu(), groups: out };
}

export interface CpuSplit {
  windowS: number;
  /** Per group, % of one core over the window (100 = one core busy; nproc × 100 = the machine). */
  pct: Record<string, number>;
  /** Process time of everything else on the machine: busy (user+nice+system) minus the groups. */
  otherPct: number;
  /** Kernel interrupt work (irq+softirq: loopback TCP mostly), largely charged to no process. */
  softirqPct: number;
  stealPct: number;
  machineBusyPct: number;
}

/** CPU per group between two snapshots; "other" is the machine's busy time the groups do not explain. */
export function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit {
  const windowS = Math.max(0.001, (b.t - a.t) / 1000);
  const pct = (x: number): number => Math.round((x / windowS) * 1000) / 10;
  const groups: Record<string, number> = {};
  let accounted = 0;
  for (const name of Object.keys(b.groups)) {
    const d = (b.groups[name] ?? Number.NaN) - (a.groups[name] ?? Number.NaN);
    groups[name] = pct(d);
    if (Number.isFinite(d)) accounted += d;
  }
  const busy = b.machine.busy - a.machine.busy;
  return {
    windowS: Math.round(windowS * 1000) / 1000,
    pct: groups,
    otherPct: Math.max(0, pct(busy - accounted)),
    softirqPct: pct(b.machine.irq - a.machine.irq),
    stealPct: pct(b.machine.steal - a.machine.steal),
    machineBusyPct: pct(busy),
  };
}
