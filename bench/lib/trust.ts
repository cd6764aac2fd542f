/**
 * Whether a run measured the server or its own load generator. A generator whose event loop runs
 * late times its own stall into every latency it reports (a vote's, or a subscriber's
 * publish→receipt), and a vote pool too small for the offered rate queues votes client-side that
 * the server would have answered in time. Either way the latencies say more about the bench than
 * about the server: the run is flagged, in the result JSON (`trust`) and in the printed tables.
 */
import type { LoopDelayMs } from './loop-delay.js';
import type { KernelNetCounters } from './kernel-net.js';
import type { VoteReport } from './voters.js';

/** p99 event-loop delay (and vote send lag) above which a generator no longer times the server alone. */
export const GENERATOR_DELAY_LIMIT_MS = 50;

export interface Trust {
  trustworthy: boolean;
  reasons: string[];
}

export function assessTrust(input: {
  /** The process holding the subscriber sockets (undefined: no subscribers). */
  subscriberLoopDelayMs?: LoopDelayMs;
  votes: Pick<VoteReport, 'loopDelayMs' | 'sendLagMs' | 'serviceMs' | 'clientQueue'>;
  /** The latency a server "answering in time" may take; the vote pool was sized for it. */
  voteBudgetMs: number;
  /** What the kernel dropped meanwhile (lib/kernel-net.ts), when known. */
  kernelNet?: KernelNetCounters | null;
}): Trust {
  const limit = GENERATOR_DELAY_LIMIT_MS;
  const reasons: string[] = [];
  const { votes } = input;
  const sub = input.subscriberLoopDelayMs;
  if (sub && sub.p99 > limit) {
    reasons.push(
      `subscriber generator event-loop delay p99 ${sub.p99} ms > ${limit} ms: publish→receipt latencies include the generator's own stalls`,
    );
  }
  if (votes.loopDelayMs.p99 > limit) {
    reasons.push(
      `vote generator event-loop delay p99 ${votes.loopDelayMs.p99} ms > ${limit} ms: vote latencies include the generator's own stalls`,
    );
  }
  if (votes.sendLagMs.p99 > limit) {
    reasons.push(
      `votes left the generator late: send lag p99 ${votes.sendLagMs.p99} ms > ${limit} ms (the offered rate was not offered on time)`,
    );
  }
  // Votes waited for a socket although the server answered within the budget the pool was sized
  // for: the pool, not the server, held them back.
  if (
    votes.clientQueue.votes > 0 &&
    votes.serviceMs.p99 <= input.voteBudgetMs &&
    votes.clientQueue.waitMs.p99 > limit
  ) {
    reasons.push(
      `${votes.clientQueue.votes} votes waited for a client socket (p99 ${votes.clientQueue.waitMs.p99} ms) while the server answered within ${input.voteBudgetMs} ms (service p99 ${votes.serviceMs.p99} ms): raise --vote-sockets`,
    );
  }
  const net = input.kernelNet;
  if (net && (net.backlogDrops > 0 || net.listenOverflows > 0)) {
    reasons.push(
      `the kernel dropped ${net.backlogDrops} packets (a CPU's backlog queue was full) and ${net.listenOverflows} connection attempts (a listen queue was full) during the run: TCP retransmission stalls (0.2–15 s) are in the latencies (${net.synRetransmits} SYN retransmits, ${net.retransmitTimeouts} timeouts; machine-wide counters)`,
    );
  }
  return { trustworthy: reasons.length === 0, reasons };
}
