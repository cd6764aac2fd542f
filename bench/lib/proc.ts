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

export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly pid: number,
    private readonly intervalMs = 500,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    const s = readProc(this.pid);
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
    return { busy: (at(0) + at(1) + at(2)) / clkTck, irq: (at(5) + at(6)) / clkTck, steal: at(7) / clkTck, total: total / clkTck };
  } catch {
    return { busy: Number.NaN, irq: Number.NaN, steal: Number.NaN, total: Number.NaN };
  }
}

/** CPU seconds used so far by `root` and all its live descendants (e.g. a postmaster and its backends). */
export function treeCpuSeconds(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return Number.NaN;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(f[1]));
      cpu.set(Number(name), (Number(f[11]) + Number(f[12])) / clkTck);
    } catch {
      /* exited meanwhile */
    }
  }
  let total = 0;
  for (const [pid, seconds] of cpu) {
    let p: number | undefined = pid;
    for (let depth = 0; p !== undefined && p > 1 && depth < 32; depth++) {
      if (p === root) {
        total += seconds;
        break;
      }
      p = parent.get(p);
    }
  }
  return total;
}
