/**
 * What the kernel dropped while a run was measured. On loopback every packet a process sends goes
 * through its CPU's backlog queue (net.core.netdev_max_backlog, 1000 by default); a fan-out that
 * writes thousands of frames at once can overflow it when the softirq that drains it is starved,
 * and a dropped packet costs its connection a TCP retransmission timeout: 200 ms and doubling for
 * data, 1, 3, 7, 15 s for a connection's SYN. Such stalls look like a slow server in a vote's
 * latency, so the run reports them (and is flagged) instead of leaving them to be guessed.
 *
 * The counters are machine-wide (every process of the network namespace): on a shared machine
 * other work's drops count too.
 */
import { readFileSync } from 'node:fs';

export interface KernelNetCounters {
  /** Packets dropped because a CPU's backlog queue was full (/proc/net/softnet_stat, 2nd column). */
  backlogDrops: number;
  /** Connection attempts dropped because a listen queue was full (TcpExt ListenOverflows). */
  listenOverflows: number;
  /** SYNs sent again (TcpExt TCPSynRetrans): connects that took ≥ 1 s. */
  synRetransmits: number;
  /** Retransmission timeouts (TcpExt TCPTimeouts). */
  retransmitTimeouts: number;
}

/** Sums the dropped column of softnet_stat's per-CPU lines (hexadecimal). */
export function parseSoftnetDrops(text: string): number {
  let drops = 0;
  for (const line of text.split('\n')) {
    const dropped = line.trim().split(/\s+/)[1];
    if (dropped) drops += Number.parseInt(dropped, 16);
  }
  return drops;
}

/** `name → value` of one protocol's two-line block in /proc/net/netstat or /proc/net/snmp. */
export function parseProtocolCounters(text: string, protocol: string): Map<string, number> {
  const lines = text.split('\n').filter((line) => line.startsWith(`${protocol}:`));
  const counters = new Map<string, number>();
  if (lines.length < 2) return counters;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1);
  names.forEach((name, i) => counters.set(name, Number(values[i])));
  return counters;
}

/** The counters now, or undefined where /proc/net is not readable (not Linux). */
export function readKernelNet(): KernelNetCounters | undefined {
  try {
    const tcpExt = parseProtocolCounters(readFileSync('/proc/net/netstat', 'utf8'), 'TcpExt');
    return {
      backlogDrops: parseSoftnetDrops(readFileSync('/proc/net/softnet_stat', 'utf8')),
      listenOverflows: tcpExt.get('ListenOverflows') ?? 0,
      synRetransmits: tcpExt.get('TCPSynRetrans') ?? 0,
      retransmitTimeouts: tcpExt.get('TCPTimeouts') ?? 0,
    };
  } catch {
    return undefined;
  }
}

export function kernelNetDelta(
  before: KernelNetCounters | undefined,
  after: KernelNetCounters | undefined,
): KernelNetCounters | null {
  if (!before || !after) return null;
  return {
    backlogDrops: after.backlogDrops - before.backlogDrops,
    listenOverflows: after.listenOverflows - before.listenOverflows,
    synRetransmits: after.synRetransmits - before.synRetransmits,
    retransmitTimeouts: after.retransmitTimeouts - before.retransmitTimeouts,
  };
}
