/**
 * Backpressure: what a watcher that cannot keep up gets, as each subscription field declares it
 * (src/schema/delivery-plugin.ts), on every transport.
 *
 * A client "cannot keep up" when the bytes written for it but not yet taken by its connection pass
 * `maxClientBufferBytes` (graphql-ws: the socket's bufferedAmount; SSE: the response body's
 * unread bytes; each transport puts a `clientBacklog()` in the operation's context). From then on
 * the operation's results wait here instead of piling up in the socket:
 * - snapshot fields keep only the newest (it is the whole state: nothing is lost);
 * - event fields keep up to `maxQueued` in order; one more while the client is behind and the
 *   subscription ends with RATE_LIMITED, reason SLOW_CONSUMER (retryable, retryAfterMs): the client
 *   resumes with its cursor (afterSeq, Last-Event-ID) once it reads again. "Behind" also means
 *   "has not taken a waiting result for STALLED_MS" (graphql-ws writes one message at a time);
 *   until that is known at most 10 × maxQueued wait.
 * Memory per slow watcher is therefore bounded by the buffer plus what its policy keeps, and
 * nobody else waits for it. Shared subscriptions apply the same policies per subscriber
 * (shared-subscriptions.ts); this plugin covers every other operation.
 */
import { GraphQLError, getOperationAST, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { AppError, ErrorCode } from '../errors.js';
import type { DeliveryPolicy } from '../schema/delivery-plugin.js';
import type { SubscribeHooks } from './stream.js';

export type { DeliveryPolicy };

/** Put in an operation's context by its transport. */
export interface ClientBacklogContext {
  /** Bytes written for this client that its connection has not taken yet. */
  clientBacklog?: () => number;
  /** Set by shared subscriptions on operations they serve (they apply the policy themselves). */
  sharedDelivery?: boolean;
}

/** How long a slow client is told to wait before it resubscribes. */
export const SLOW_CONSUMER_RETRY_MS = 1_000;

export function slowConsumer(maxQueued: number): AppError {
  return new AppError(
    ErrorCode.RATE_LIMITED,
    `this subscription fell ${maxQueued} events behind its client and was ended: resubscribe with afterSeq`,
    {
      reason: 'SLOW_CONSUMER',
      maxQueued,
      retryAfterMs: SLOW_CONSUMER_RETRY_MS,
    },
  );
}

/** The error result that ends a slow subscriber's stream (the pipeline masks it like any AppError). */
export const slowConsumerResult = (maxQueued: number): ExecutionResult => {
  const error = slowConsumer(maxQueued);
  return { data: null, errors: [new GraphQLError(error.message, { originalError: error })] };
};

/** The policy of every Subscription field, from the schema's extensions. */
export function deliveryPoliciesOf(schema: GraphQLSchema): Map<string, DeliveryPolicy> {
  const policies = new Map<string, DeliveryPolicy>();
  for (const field of Object.values(schema.getSubscriptionType()?.getFields() ?? {})) {
    const policy = field.extensions['delivery'] as DeliveryPolicy | undefined;
    if (policy) policies.set(field.name, policy);
  }
  return policies;
}

/**
 * Told what backpressure does, per Subscription field (metrics; src/modules/ops). Optional
 * everywhere: without one nothing extra runs.
 */
export interface DeliveryObserver {
  /** `count` results written to subscribers; `publishedAtMs`: when their event was published. */
  delivered(field: string, publishedAtMs: number | undefined, count: number): void;
  /** Snapshots replaced by a newer one before a slow watcher was sent them. */
  conflated(field: string, count: number): void;
  /** An event subscription ended as a slow consumer. */
  slowConsumer(field: string): void;
}

export interface DeliveryStats {
  /** Results held right now for clients that are behind. */
  held: number;
  /** The most ever held for one operation. */
  maxHeld: number;
  /** Subscriptions ended as slow consumers. */
  slowConsumers: number;
}

const DRAIN_POLL_MS = 25;
/**
 * Results also wait here while the transport is between two sends (graphql-ws pulls the next one
 * once the previous is written): that is not the client's fault, so maxQueued counts only while
 * the client is behind. This many times maxQueued ends the subscription anyway (memory).
 */
const HARD_LIMIT_FACTOR = 10;
/** A transport that has not taken a waiting result for this long has a client that is not reading. */
const STALLED_MS = 2_000;

/**
 * Delivers `source` to a transport that pulls with next(), holding results while the client is
 * behind. The source is read ahead (so its own buffers never fill); `return()` stops both.
 */
export function boundedDelivery(
  source: AsyncIterator<ExecutionResult>,
  policy: DeliveryPolicy,
  opts: {
    clientBacklog: () => number;
    maxClientBufferBytes: number;
    stats: DeliveryStats;
    field?: string;
    observer?: DeliveryObserver;
  },
): AsyncIterableIterator<ExecutionResult> {
  const { clientBacklog, maxClientBufferBytes, stats, field = '', observer } = opts;
  const held: ExecutionResult[] = [];
  let lastPullAt = Date.now();
  /**
   * The client is behind: its connection holds more than the limit, or the transport has not
   * taken a result for STALLED_MS while some wait (graphql-ws sends one message at a time and
   * waits until the socket took it, so its buffer alone never shows a stalled reader).
   */
  const behind = (): boolean =>
    clientBacklog() > maxClientBufferBytes || (held.length > 0 && Date.now() - lastPullAt > STALLED_MS);
  let sourceDone = false;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;

  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const setHeld = (items: ExecutionResult[]): void => {
    stats.held += items.length - held.length;
    held.splice(0, held.length, ...items);
    stats.maxHeld = Math.max(stats.maxHeld, held.length);
  };

  void (async () => {
    try {
      for (;;) {
        const step = await source.next();
        if (step.done || ended) break;
        const { value } = step;
        if (policy.kind === 'snapshot' && !value.errors && !held.some((r) => r.errors)) {
          if (held.length > 0) observer?.conflated(field, held.length);
          setHeld([value]); // the whole state: the newest replaces what was waiting
        } else if (
          policy.kind === 'events' &&
          held.length >= policy.maxQueued &&
          (behind() || held.length >= HARD_LIMIT_FACTOR * policy.maxQueued)
        ) {
          stats.slowConsumers += 1;
          observer?.slowConsumer(field);
          setHeld([slowConsumerResult(policy.maxQueued)]);
          ended = true;
          void source.return?.();
          break;
        } else {
          setHeld([...held, value]);
        }
        notify();
      }
    } catch (error) {
      failure = { error };
    } finally {
      sourceDone = true;
      notify();
    }
  })();

  async function clientReady(): Promise<void> {
    while (clientBacklog() > maxClientBufferBytes && !closed) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS).unref());
    }
  }

  let closed = false;
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      lastPullAt = Date.now();
      for (;;) {
        if (closed) return { value: undefined, done: true };
        if (held.length > 0) {
          await clientReady();
          if (closed) return { value: undefined, done: true };
          const value = held[0]!;
          setHeld(held.slice(1));
          lastPullAt = Date.now();
          return { value, done: false };
        }
        if (failure) throw failure.error;
        if (sourceDone) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return() {
      closed = true;
      ended = true;
      setHeld([]);
      notify();
      await source.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/**
 * Applies each Subscription field's policy to operations that are not shared. Register it after
 * useSharedSubscriptions (which marks the operations it serves).
 */
export function useDeliveryPolicies(options: {
  policies: Map<string, DeliveryPolicy>;
  maxClientBufferBytes: number;
  observer?: DeliveryObserver;
}): Plugin & {
  stats(): DeliveryStats;
} {
  const stats: DeliveryStats = { held: 0, maxHeld: 0, slowConsumers: 0 };
  const hooks: SubscribeHooks = {
    onSubscribeResult({ args, result, setResult }) {
      const context = args.contextValue as ClientBacklogContext;
      if (!isAsyncIterable(result) || context.sharedDelivery || !context.clientBacklog) return;
      const { document, operationName } = args as ExecutionArgs;
      const root = getOperationAST(document, operationName)?.selectionSet.selections[0];
      const field = root?.kind === 'Field' ? root.name.value : undefined;
      const policy = field === undefined ? undefined : options.policies.get(field);
      if (!policy || field === undefined) return;
      setResult(
        boundedDelivery((result as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator](), policy, {
          clientBacklog: context.clientBacklog,
          maxClientBufferBytes: options.maxClientBufferBytes,
          stats,
          field,
          ...(options.observer && { observer: options.observer }),
        }),
      );
    },
  };
  return {
    stats: () => ({ ...stats }),
    onSubscribe: () => hooks, // one object for every subscription (SubscribeHooks)
  };
}
