/**
 * What the kit's end-to-end tests share: a recorder of what a subscription delivers (with arrival
 * times), a publisher of channel events, and the channel's history as the server keeps it (the
 * truth to compare deliveries with).
 */
import WebSocket from 'ws';
import {
  ChannelEventDocument,
  ChannelEventsDocument,
  PublishToChannelDocument,
} from '../../../../test/generated/graphql.js';
import { dataOf, execute, tokenFor } from '../../../../test/support/graphql.js';
import {
  createOvationClient,
  type OvationClient,
  type OvationClientOptions,
  type ResyncEvent,
  type StatusEvent,
  type TypedDocumentNode,
} from '../../src/index.js';

export const adminToken = (): Promise<string> => tokenFor({ sub: 'kit-admin', name: 'Kit', role: 'ADMIN' });

let serial = 0;
export const uniqueChannel = (prefix: string): string => `kit-${prefix}-${Date.now().toString(36)}-${(serial += 1)}`;

/** Waiters woken on every change, each with its own deadline. */
export class Changes {
  private readonly waiters = new Set<() => void>();
  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
  until(check: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      const wake = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
      wake();
    });
  }
}

/** A kit client with its status history, for tests: the test's ws implementation and short timings. */
export function kitClient(options: Partial<OvationClientOptions> & Pick<OvationClientOptions, 'url'>) {
  const statuses: (StatusEvent & { at: number })[] = [];
  const changes = new Changes();
  const client = createOvationClient({
    webSocketImpl: WebSocket,
    ...options,
    onStatus: (status) => {
      statuses.push({ ...status, at: performance.now() });
      options.onStatus?.(status);
      changes.notify();
    },
  });
  const lives = (from: number) => statuses.slice(from).filter((s) => s.state === 'live');
  return {
    client,
    statuses,
    /** Resolves once `check` holds, checked after each status change. */
    untilStatus: (check: () => boolean, what: string, timeoutMs = 15_000) =>
      changes.until(check, () => what, timeoutMs),
    /** Resolves with the status once the client is live (on `transport`, if given) after status number `from`. */
    async live(transport?: string, from = 0, timeoutMs = 15_000): Promise<StatusEvent & { at: number }> {
      const found = () => lives(from).find((s) => transport === undefined || s.transport === transport);
      await changes.until(
        () => found() !== undefined,
        () =>
          `live${transport ? ` on ${transport}` : ''} (statuses: ${JSON.stringify(statuses.slice(from).map((s) => [s.state, s.transport]))})`,
        timeoutMs,
      );
      return found()!;
    },
  };
}

export interface Delivery {
  seq: number;
  at: number;
}

/** Subscribes and records everything the kit hands the app, with waits on it. */
export function recordSubscription<TData, TVariables extends Record<string, unknown>>(
  client: OvationClient,
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
) {
  const changes = new Changes();
  const values: TData[] = [];
  const arrivals: number[] = [];
  const resyncs: ResyncEvent[] = [];
  const errors: unknown[] = [];
  const starts: { transport: string; cursor: number | null; at: number }[] = [];
  let completed = false;
  const unsubscribe = client.subscribe(document, variables, {
    next(result) {
      if (result.data) {
        values.push(result.data);
        arrivals.push(performance.now());
      } else errors.push(result.errors);
      changes.notify();
    },
    error(error) {
      errors.push(error);
      changes.notify();
    },
    complete() {
      completed = true;
      changes.notify();
    },
    resync(event) {
      resyncs.push(event);
      changes.notify();
    },
    started(info) {
      starts.push({ ...info, at: performance.now() });
      changes.notify();
    },
  });
  /** What was recorded, for timeout messages. */
  const state = (): string =>
    JSON.stringify({
      values: values.length,
      starts: starts.map((s) => [s.transport, s.cursor]),
      resyncs: resyncs.map((r) => [r.reason, r.afterSeq, r.latestSeq]),
      errors,
      completed,
    });
  const until = (check: () => boolean, what: () => string, timeoutMs = 15_000) =>
    changes.until(check, () => `${what()}; recorded ${state()}`, timeoutMs);
  return {
    values,
    arrivals,
    resyncs,
    errors,
    starts,
    get completed() {
      return completed;
    },
    unsubscribe,
    until: (check: () => boolean, what: string, timeoutMs?: number) => until(check, () => what, timeoutMs),
    /** Resolves once `count` values in all were delivered. */
    count: (count: number, timeoutMs?: number) =>
      until(
        () => values.length >= count,
        () => `${count} values (have ${values.length})`,
        timeoutMs,
      ),
    /** Resolves once the subscription was started (again) on a connection: start number `count`. */
    started: (count = 1, timeoutMs?: number) =>
      until(
        () => starts.length >= count,
        () => `start #${count} (have ${starts.length})`,
        timeoutMs,
      ),
    resynced: (count = 1, timeoutMs?: number) =>
      until(
        () => resyncs.length >= count,
        () => `resync #${count} (have ${resyncs.length})`,
        timeoutMs,
      ),
  };
}

/** A channel's events as the kit delivers them. */
export function recordChannel(client: OvationClient, channel: string, opts: { afterSeq?: number } = {}) {
  const feed = recordSubscription(client, ChannelEventDocument, {
    channel,
    ...(opts.afterSeq !== undefined && { afterSeq: opts.afterSeq }),
  });
  const seqs = (): number[] => feed.values.map((v) => v.channelEvent.seq);
  return {
    ...feed,
    seqs,
    deliveries: (): Delivery[] => feed.values.map((v, i) => ({ seq: v.channelEvent.seq, at: feed.arrivals[i]! })),
    /** Resolves once an event with seq ≥ `seq` was delivered. */
    reach: (seq: number, timeoutMs?: number) =>
      feed.until(
        () => (seqs().at(-1) ?? 0) >= seq,
        `seq ${seq} (delivered up to ${seqs().at(-1) ?? 'none'})`,
        timeoutMs,
      ),
  };
}

/** Publishes to a channel as an admin, one event at a time, to the server `target()` names. */
export async function publishOne(graphqlUrl: string, channel: string, token: string): Promise<number> {
  const { publishToChannel } = dataOf(
    await execute(fetch, graphqlUrl, PublishToChannelDocument, { channel, type: 'tick', data: null }, token),
  );
  return publishToChannel.seq;
}

/** Publishes every `intervalMs` until stopped; a failed publish (the target is being killed) is retried on the next tick. */
export function startPublisher(target: () => string, channel: string, token: string, intervalMs = 40) {
  let running = true;
  let published = 0;
  const loop = (async () => {
    while (running) {
      try {
        await publishOne(target(), channel, token);
        published += 1;
      } catch {
        // the instance went away mid-request: the history says whether it committed
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    get published() {
      return published;
    },
    async stop(): Promise<void> {
      running = false;
      await loop;
    },
  };
}

/** Every seq the server keeps for a channel, in order. */
export async function channelHistory(graphqlUrl: string, channel: string, token: string): Promise<number[]> {
  const seqs: number[] = [];
  for (let afterSeq = 0; ;) {
    const { channelEvents } = dataOf(
      await execute(fetch, graphqlUrl, ChannelEventsDocument, { channel, afterSeq, first: 200 }, token),
    );
    seqs.push(...channelEvents.events.map((e) => e.seq));
    if (!channelEvents.hasMore || channelEvents.events.length === 0) return seqs;
    afterSeq = seqs.at(-1)!;
  }
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
