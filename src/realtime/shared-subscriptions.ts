/**
 * Subscribers with the same document and variables share one execution.
 *
 * Stock GraphQL servers run `subscribe()` once per subscriber, so every event is executed (and
 * its selection resolved) once per subscriber: at 10,000 watchers of one tally that is 10,000
 * executions per update. For root fields whose payload does not depend on who is watching (a
 * tally is the same for everyone), this plugin keys subscriptions by (document, operation,
 * variables): the first subscriber's `subscribe()` becomes the one source, and each result is
 * computed once and handed to every attached subscriber. Per subscriber only a small queue and the
 * transport's own framing remain.
 *
 * Fields are registered with their kind:
 * - 'snapshot': every event is the full state (tally standings): a late joiner first gets the
 *   latest result, and a slow subscriber only ever holds the newest one (conflation). Every
 *   result reaches every subscriber while the fan-out keeps up; a backlog older than
 *   MAX_SNAPSHOT_LAG_MS gives way to the newest result.
 * - 'events': every event matters (bursts, transitions): no replay, a bounded per-subscriber
 *   queue; a subscriber that falls `maxBuffer` behind is ended with an error.
 * Operations that mix shared and other root fields, or use fragments/directives at the root,
 * run unshared. A resuming subscriber of an event stream (an `afterSeq` variable, or SSE's
 * Last-Event-ID) replays its own past on its own execution, then joins the topic's shared stream
 * at the seq after its last (join()): a venue that reconnected with its cursors after an
 * instance died costs one execution per event again, not one per watcher. A literal `afterSeq`,
 * or several root fields, still run unshared to the end.
 *
 * One file on purpose: the shared execution, its fan-out slices and the direct-sink write path share
 * the per-subscriber state that keeps a result executed once and written once per subscriber.
 */
import {
  getOperationAST,
  Kind,
  print,
  type ArgumentNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { seqOf, type CursorContext } from './cursors.js';
import {
  slowConsumerResult,
  type ClientBacklogContext,
  type DeliveryObserver,
  type DeliveryPolicy,
} from './delivery.js';
import { publishedAtOf } from './cursors.js';
import type { FanoutPacer } from './fanout-pacer.js';

export type SharedKind = 'snapshot' | 'events';

/** A shared result's serialisations, each produced once whoever receives it. */
export interface EncodedResult {
  /** The result's JSON, UTF-8. */
  json(): Buffer;
  /** The seq of the event it was made from (cursors.ts), when it has one. */
  readonly seq: number | undefined;
  /**
   * `encode(json(), seq)`, once per encoder for every subscriber: a transport's framing (an SSE
   * event with its `id:`). `seq`: the event's seq (cursors.ts), when it has one.
   */
  framed(encode: (json: Buffer, seq: number | undefined) => Buffer): Buffer;
}

/**
 * A transport that writes a shared result's serialised payload to its client itself, bypassing
 * the per-subscriber iterator chain (graphql-ws: ws.ts, SSE: sse.ts). Put in the operation's
 * context as `directSink`. Results with errors still take the iterator, so the pipeline masks them.
 */
export interface DirectSink {
  /**
   * Sends the result as this operation's next message. 'busy': the client is behind on reading;
   * `retry` is called once it caught up. 'closed': the connection is gone (the transport ends the
   * operation itself).
   */
  write(result: EncodedResult, retry: () => void): WriteOutcome;
}

export type WriteOutcome = 'sent' | 'busy' | 'closed';

export interface DirectSinkContext {
  directSink?: DirectSink;
}

/** One produced result, serialised at most once whoever receives it. */
interface Frame extends EncodedResult {
  result: ExecutionResult;
}

function frameOf(result: ExecutionResult): Frame {
  let text: string | undefined;
  let json: Buffer | undefined;
  let framings: Map<(json: Buffer, seq: number | undefined) => Buffer, Buffer> | undefined;
  const serialised = (): string => (text ??= JSON.stringify(result));
  if (!result.errors) {
    // Yoga's SSE and JSON processors call `result.stringify` when present (non-enumerable, so it
    // is not serialised itself): every subscriber on those paths reuses this one JSON.stringify.
    Object.defineProperty(result, 'stringify', {
      value: (value: unknown) => (value === result ? serialised() : JSON.stringify(value)),
      enumerable: false,
    });
  }
  const frame: Frame = {
    result,
    seq: seqOf(result),
    json: () => (json ??= Buffer.from(serialised())),
    framed(encode) {
      framings ??= new Map();
      let bytes = framings.get(encode);
      if (!bytes) framings.set(encode, (bytes = encode(frame.json(), frame.seq)));
      return bytes;
    },
  };
  return frame;
}

interface Subscriber {
  /** Results for the iterator (the slow path), oldest first. */
  queue: ExecutionResult[];
  waiting?: (result: IteratorResult<ExecutionResult>) => void;
  failed?: Error;
  done: boolean;
  sink?: DirectSink;
  /** Direct frames not written yet because the client was busy; snapshot streams keep only the newest. */
  backlog: Frame[];
  retryArmed: boolean;
  /** Given to the sink on every write: made once, not per result. */
  retry: () => void;
  /** The source completed while the client was behind: done once the backlog is written. */
  ending: boolean;
  /**
   * A resuming subscriber still on its own replay (join()): this stream's frames are kept here
   * (the newest maxBuffer) instead of delivered, until its replay reaches them.
   */
  holding?: Frame[];
  /** The seq of the last frame held (this stream's position as the subscriber saw it). */
  seen?: number;
  /** After a hand-off: frames up to this seq reached the client through its replay already. */
  skipUpTo?: number;
}

interface SharedStream {
  attach(sink?: DirectSink): AsyncIterableIterator<ExecutionResult>;
  /**
   * A resuming subscriber: `own` (its execution from its cursor) until it reaches what this
   * stream delivers, then this stream from the seq after its last (`own` is closed then).
   */
  join(sink: DirectSink | undefined, own: AsyncIterator<ExecutionResult>): AsyncIterableIterator<ExecutionResult>;
  size(): number;
}

const printed = new WeakMap<DocumentNode, string>();
function printOnce(document: DocumentNode): string {
  let text = printed.get(document);
  if (text === undefined) printed.set(document, (text = print(document)));
  return text;
}

/** JSON with sorted keys, so {a,b} and {b,a} variables share. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * A fan-out is written in slices with a turn of the event loop in between, so the writes to a
 * large audience never hold the loop for long. A slice ends after FANOUT_SLICE subscribers or,
 * while other work is waiting, after FANOUT_SLICE_BUDGET_MS of writes.
 *
 * The time budget is what keeps votes moving during a rush. A castVote needs a few turns of the
 * loop (its request, the group commit's PostgreSQL round trip, its response), and each turn waited
 * for the slice in progress: with slices of 2,000 writes (~40 ms at 10,000 busy sockets here) a
 * vote waited ~4 slices, 150–300 ms, in steady state alone. Slices of ~8 ms bring that to tens of
 * ms. "Other work is waiting": an HTTP request is being answered (the pacer counts them), or the
 * last turn between two slices took more than FANOUT_BUSY_TURN_MS (WebSocket messages, database
 * replies, timers). Otherwise slices stay long: smaller ones cost throughput (each write() got
 * dearer: 13.7 µs at 500 per turn vs 11.3 µs at 2,000 in the capacity benchmark), and a loop with
 * nothing else to do gains nothing from shorter ones.
 */
const FANOUT_SLICE = 2_000;
const FANOUT_SLICE_BUDGET_MS = 8;
/** While connections are arriving: Node accepts about one per turn of a busy loop (fanout-pacer.ts). */
const FANOUT_ARRIVALS_BUDGET_MS = 1;
const FANOUT_BUSY_TURN_MS = 1;
/** Writes between two reads of the clock inside a slice. */
const CLOCK_EVERY = 64;

/**
 * How stale a queued snapshot may get before a newer one replaces it. Every result is delivered
 * while the fan-out keeps up; under sustained overload watchers get the newest standings at most
 * this late instead of an ever older backlog (a snapshot is the whole state, so nothing is lost).
 */
const MAX_SNAPSHOT_LAG_MS = 2_000;

export function createSharedStream(
  source: AsyncIterableIterator<ExecutionResult>,
  kind: SharedKind,
  maxBuffer: number,
  onEmpty: () => void,
  options: {
    maxSnapshotLagMs?: number;
    now?: () => number;
    field?: string;
    observer?: DeliveryObserver;
    /** Told when a fan-out starts and ends: snapshot publishers pace on it (fanout-pacer.ts). */
    pacer?: FanoutPacer;
    sliceBudgetMs?: number;
    /** The slice budget's clock (ms, sub-millisecond resolution). */
    sliceClock?: () => number;
  } = {},
): SharedStream {
  const {
    maxSnapshotLagMs = MAX_SNAPSHOT_LAG_MS,
    now = Date.now,
    field = '',
    observer,
    pacer,
    sliceBudgetMs = FANOUT_SLICE_BUDGET_MS,
    sliceClock = () => performance.now(),
  } = options;
  const subscribers = new Set<Subscriber>();
  let latest: Frame | undefined;
  let ended = false;

  // Direct writes are counted in plain numbers per frame and reported once per fan-out slice: a
  // frame's lag is the same for every subscriber of a slice (metrics must stay off the write path).
  let counted: Frame | undefined;
  let written = 0;
  const report = (): void => {
    if (counted && written > 0) observer?.delivered(field, publishedAtOf(counted.result), written);
    counted = undefined;
    written = 0;
  };
  // A late joiner's first result is the latest snapshot, published maybe minutes ago: counted as
  // delivered, but its age is not a delivery lag.
  let attaching = false;
  /** Every direct write goes through here (counted inline: a counting wrapper per subscriber cost heap). */
  const write = (subscriber: Subscriber, frame: Frame): WriteOutcome => {
    const outcome = subscriber.sink!.write(frame, subscriber.retry);
    if (outcome === 'sent' && observer) {
      if (attaching) observer.delivered(field, undefined, 1);
      else {
        if (counted !== frame) {
          report();
          counted = frame;
        }
        written += 1;
      }
    }
    return outcome;
  };

  /**
   * An event stream's subscriber that fell maxBuffer behind: its stream ends with RATE_LIMITED
   * (SLOW_CONSUMER), delivered as its last result; it resumes from its cursor (delivery.ts).
   */
  const endSlow = (subscriber: Subscriber): void => {
    observer?.slowConsumer(field);
    subscriber.backlog.length = 0;
    subscriber.queue.length = 0;
    const result = slowConsumerResult(maxBuffer);
    const wake = subscriber.waiting;
    subscriber.waiting = undefined;
    if (wake) wake({ value: result, done: false });
    else subscriber.queue.push(result);
    finish(subscriber);
  };

  /** The iterator's path: one result per next(), through the Yoga pipeline's per-result hooks. */
  const deliverSlow = (subscriber: Subscriber, result: ExecutionResult): void => {
    if (subscriber.waiting) {
      const wake = subscriber.waiting;
      subscriber.waiting = undefined;
      wake({ value: result, done: false });
    } else if (kind === 'snapshot') {
      if (subscriber.queue.length > 0) observer?.conflated(field, 1);
      subscriber.queue[0] = result;
    } else if (subscriber.queue.length >= maxBuffer) {
      endSlow(subscriber);
    } else {
      subscriber.queue.push(result);
    }
  };

  /** The iterator reports done once its queue is empty (queued results still drain). */
  const complete = (subscriber: Subscriber): void => {
    subscriber.done = true;
    const wake = subscriber.waiting;
    subscriber.waiting = undefined;
    wake?.({ value: undefined, done: true });
  };

  /** Writes the backlog through the sink until it is empty or the client is busy again. */
  const flushBacklog = (subscriber: Subscriber): void => {
    while (subscriber.backlog.length > 0 && !subscriber.done) {
      const frame = subscriber.backlog[0]!;
      if (frame.result.errors) {
        subscriber.backlog.shift();
        deliverSlow(subscriber, frame.result);
        continue;
      }
      const outcome = write(subscriber, frame);
      if (outcome === 'busy') {
        subscriber.retryArmed = true;
        return;
      }
      subscriber.backlog.shift();
      if (outcome === 'closed') subscriber.backlog.length = 0;
    }
    if (subscriber.ending && !subscriber.done) complete(subscriber);
  };

  const deliver = (subscriber: Subscriber, frame: Frame): void => {
    if (subscriber.done) return;
    if (subscriber.holding) {
      // An error frame (the source failed) is not held: this stream ends, the replay goes on alone.
      if (frame.seq === undefined) return;
      subscriber.seen = frame.seq;
      subscriber.holding.push(frame);
      if (subscriber.holding.length > maxBuffer) subscriber.holding.shift();
      return;
    }
    if (subscriber.skipUpTo !== undefined && frame.seq !== undefined && frame.seq <= subscriber.skipUpTo) return;
    // Results with errors, and anything queued behind one, go through the iterator in order.
    if (!subscriber.sink || subscriber.queue.length > 0 || (frame.result.errors && subscriber.backlog.length === 0)) {
      deliverSlow(subscriber, frame.result);
      return;
    }
    if (subscriber.backlog.length === 0 && !subscriber.retryArmed && !frame.result.errors) {
      // The common case, once per subscriber per result: straight to the client.
      if (write(subscriber, frame) === 'busy') {
        subscriber.retryArmed = true;
        subscriber.backlog.push(frame);
      }
      return;
    }
    if (kind === 'snapshot' && subscriber.backlog.length > 0) {
      observer?.conflated(field, 1);
      subscriber.backlog[subscriber.backlog.length - 1] = frame;
    } else if (subscriber.backlog.length >= maxBuffer) return endSlow(subscriber);
    else subscriber.backlog.push(frame);
    if (!subscriber.retryArmed) flushBacklog(subscriber);
  };

  const finish = (subscriber: Subscriber, failure?: Error): void => {
    if (subscriber.done) return;
    subscriber.failed = failure;
    subscriber.backlog.length = 0;
    subscribers.delete(subscriber);
    complete(subscriber);
    if (subscribers.size === 0 && !ended) {
      ended = true;
      onEmpty();
      void source.return?.();
    }
  };

  // The source is read ahead of delivery: a topic subscription that conflates would otherwise
  // skip updates whenever a large fan-out below is still under way.
  const ahead: { result: ExecutionResult; at: number }[] = [];
  let readerWake: (() => void) | undefined;
  let sourceDone = false;
  let sourceFailure: { error: unknown } | undefined;
  void (async () => {
    try {
      for await (const result of source) {
        ahead.push({ result, at: now() });
        if (ahead.length > maxBuffer) {
          // A snapshot is the full state, so the oldest is obsolete; events must not be dropped.
          if (kind === 'snapshot') ahead.shift();
          else throw new Error(`shared stream fell ${maxBuffer} events behind`);
        }
        readerWake?.();
      }
    } catch (error) {
      sourceFailure = { error };
    } finally {
      sourceDone = true;
      readerWake?.();
    }
  })();

  // One pump for everyone: each result is produced (and serialised) once. A large audience is
  // served in slices with I/O in between (FANOUT_SLICE_BUDGET_MS): 10,000 writes at once would
  // hold the event loop (votes, timers, other streams) for ~200 ms.
  void (async () => {
    try {
      for (;;) {
        let next = ahead.shift();
        if (kind === 'snapshot')
          while (next && ahead.length > 0 && now() - next.at > maxSnapshotLagMs) next = ahead.shift();
        const result = next?.result;
        if (!result) {
          if (sourceDone) break;
          await new Promise<void>((resolve) => (readerWake = resolve));
          readerWake = undefined;
          continue;
        }
        const frame = frameOf(result);
        if (kind === 'snapshot') latest = frame;
        if (subscribers.size <= CLOCK_EVERY) {
          for (const subscriber of subscribers) deliver(subscriber, frame);
          report();
          continue;
        }
        // Those attaching meanwhile got `latest` already; the next result waits for this one.
        const targets = [...subscribers];
        const fannedOut = pacer?.started();
        try {
          let i = 0;
          let lastSliceEnd = 0;
          while (i < targets.length) {
            let budgetMs = sliceBudgetMs;
            if (i > 0) {
              await new Promise((resolve) => setImmediate(resolve));
              const othersWaited = sliceClock() - lastSliceEnd >= FANOUT_BUSY_TURN_MS;
              if (!othersWaited && (pacer?.requestsInFlight() ?? 0) === 0) budgetMs = Infinity;
            }
            if (pacer?.arriving()) budgetMs = Math.min(budgetMs, FANOUT_ARRIVALS_BUDGET_MS);
            const sliceEnd = Math.min(i + FANOUT_SLICE, targets.length);
            const startedAt = sliceClock();
            while (i < sliceEnd) {
              const stop = Math.min(i + CLOCK_EVERY, sliceEnd);
              for (; i < stop; i += 1) deliver(targets[i]!, frame);
              if (sliceClock() - startedAt >= budgetMs) break;
            }
            report();
            lastSliceEnd = sliceClock();
          }
        } finally {
          fannedOut?.();
        }
      }
      if (sourceFailure) {
        const frame = frameOf({ errors: [sourceFailure.error as never] });
        for (const subscriber of [...subscribers]) deliver(subscriber, frame);
      }
    } finally {
      if (!ended) {
        ended = true;
        onEmpty();
      }
      for (const subscriber of [...subscribers]) {
        subscribers.delete(subscriber);
        // A client that is behind gets what it was owed (a closed competition's final tally)
        // before its stream completes: the retry writes the backlog, then completes it.
        if (subscriber.backlog.length > 0) subscriber.ending = true;
        else complete(subscriber);
      }
    }
  })();

  const newSubscriber = (sink: DirectSink | undefined): Subscriber => {
    const subscriber: Subscriber = {
      queue: [],
      done: false,
      backlog: [],
      retryArmed: false,
      ending: false,
      retry: () => {
        subscriber.retryArmed = false;
        flushBacklog(subscriber);
      },
      ...(sink && { sink }),
    };
    return subscriber;
  };

  const iteratorOf = (subscriber: Subscriber): AsyncIterableIterator<ExecutionResult> =>
    new SubscriberIterator(subscriber, finish);

  return {
    size: () => subscribers.size,
    attach(sink) {
      const subscriber = newSubscriber(sink);
      subscribers.add(subscriber);
      if (latest) {
        attaching = true;
        deliver(subscriber, latest);
        attaching = false;
      }
      return iteratorOf(subscriber);
    },
    join(sink, own) {
      const subscriber = newSubscriber(sink);
      subscriber.holding = [];
      subscribers.add(subscriber);
      const shared = iteratorOf(subscriber);
      /** The seq of the replay's last result. */
      let last: number | undefined;
      let replaying = true;
      const stopReplay = (): void => {
        if (!replaying) return;
        replaying = false;
        void Promise.resolve(own.return?.()).catch(() => undefined);
      };
      /**
       * Whether this stream can take over now: it has delivered a frame (so its position is known)
       * and its next one is the replay's last + 1, or one the replay already sent (skipped then).
       * This stream's seqs are consecutive (resume.ts), so nothing is missed or sent twice.
       */
      const handOff = (): boolean => {
        const held = subscriber.holding;
        if (!held || subscriber.done || subscriber.seen === undefined || last === undefined) return false;
        while (held.length > 0 && held[0]!.seq! <= last) held.shift();
        if (held.length > 0 && held[0]!.seq !== last + 1) return false; // the replay is behind
        subscriber.holding = undefined;
        subscriber.skipUpTo = last;
        stopReplay();
        for (const frame of held) deliver(subscriber, frame);
        return true;
      };
      const iterator: AsyncIterableIterator<ExecutionResult> = {
        async next() {
          if (!replaying || handOff()) return shared.next();
          let step: IteratorResult<ExecutionResult>;
          try {
            step = await own.next();
          } catch (error) {
            replaying = false;
            finish(subscriber);
            throw error;
          }
          if (step.done) {
            // The replay ended (shutdown, or after its error result): so does this subscriber.
            replaying = false;
            finish(subscriber);
            return step;
          }
          const seq = seqOf(step.value);
          if (seq !== undefined) last = seq;
          return step;
        },
        return() {
          stopReplay();
          return shared.return!();
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
  };
}

/**
 * A subscriber's results as the pipeline pulls them: the slow path (errors, no sink) and its end.
 * A class, not an object literal: its methods live on the prototype instead of four closures (and
 * a computed "[Symbol.asyncIterator]" name string) per subscriber.
 */
class SubscriberIterator implements AsyncIterableIterator<ExecutionResult> {
  constructor(
    private readonly subscriber: Subscriber,
    private readonly finish: (subscriber: Subscriber) => void,
  ) {}

  next(): Promise<IteratorResult<ExecutionResult>> {
    const subscriber = this.subscriber;
    if (subscriber.queue.length > 0) return Promise.resolve({ value: subscriber.queue.shift()!, done: false });
    if (subscriber.failed) return Promise.reject(subscriber.failed);
    if (subscriber.done) return Promise.resolve({ value: undefined, done: true });
    // With a sink this usually waits for the stream's end: results go out directly.
    return new Promise((resolve) => (subscriber.waiting = resolve));
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.subscriber.queue.length = 0;
    this.finish(this.subscriber);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Whether a root field's arguments carry a resume cursor (`afterSeq` that is not null). */
export function resumes(args: readonly ArgumentNode[], variables: Record<string, unknown>): boolean {
  const cursor = args.find((a) => a.name.value === 'afterSeq')?.value;
  if (!cursor) return false;
  if (cursor.kind === Kind.VARIABLE)
    return variables[cursor.name.value] !== null && variables[cursor.name.value] !== undefined;
  return cursor.kind !== Kind.NULL;
}

export interface SharedSubscriptionsOptions {
  /**
   * Every Subscription field's delivery policy (src/schema/delivery-plugin.ts): those declared
   * `shared` (results that do not depend on the viewer) share executions, snapshot ones
   * conflating, event ones holding up to their maxQueued per subscriber.
   */
  policies: ReadonlyMap<string, DeliveryPolicy>;
  /** Told about writes, conflation and slow consumers per field (metrics). */
  observer?: DeliveryObserver;
  /** This instance's fan-out load, which snapshot publishers pace on (fanout-pacer.ts). */
  pacer?: FanoutPacer;
}

interface SharedField {
  kind: SharedKind;
  maxBuffer: number;
  /** The root field (one of them, when an operation selects several of the same kind). */
  field: string;
}

/** A snapshot stream's read-ahead bound (older snapshots are dropped first, so it only caps memory). */
const SNAPSHOT_MAX_BUFFER = 1_000;

export interface SharedSubscriptionsPlugin extends Plugin {
  /** Shared streams and their subscribers, for metrics and tests. */
  stats(): { streams: number; subscribers: number };
}

export function useSharedSubscriptions(options: SharedSubscriptionsOptions): SharedSubscriptionsPlugin {
  const fields = new Map<string, SharedField>();
  for (const [name, policy] of options.policies) {
    if (!policy.shared) continue;
    fields.set(
      name,
      policy.kind === 'snapshot'
        ? { kind: 'snapshot', maxBuffer: SNAPSHOT_MAX_BUFFER, field: name }
        : { kind: 'events', maxBuffer: policy.maxQueued, field: name },
    );
  }
  const streams = new Map<string, SharedStream>();
  /**
   * Each live stream's key, the one string every subscriber of it holds: a subscriber's own key
   * is a new string (flattened when hashed, ~350 bytes) that its subscribe closure would keep for
   * the subscription's life.
   */
  const keys = new Map<string, string>();

  /**
   * The operation's shared field, if it may share: every root selection a plain field of one
   * shared kind and buffer. `resuming`: a root field carries a cursor; `joinable`: that cursor is a
   * variable of a single root field, so the operation can replay on its own and then join the
   * stream of the same operation without a cursor (join()). `cursorVariables` are left out of the
   * key: with or without a cursor, subscribers of the same topic share one stream.
   */
  function sharedOperationOf(
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: Record<string, unknown>,
  ): { shared: SharedField; resuming: boolean; joinable: boolean; cursorVariables: string[] } | undefined {
    const operation = getOperationAST(document, operationName);
    if (operation?.operation !== 'subscription') return undefined;
    let shared: SharedField | undefined;
    let resuming = false;
    let literalCursor = false;
    const cursorVariables: string[] = [];
    for (const selection of operation.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || selection.directives?.length) return undefined;
      const field = fields.get(selection.name.value);
      if (!field || (shared && (shared.kind !== field.kind || shared.maxBuffer !== field.maxBuffer))) return undefined;
      const cursor = selection.arguments?.find((a) => a.name.value === 'afterSeq')?.value;
      if (cursor?.kind === Kind.VARIABLE) cursorVariables.push(cursor.name.value);
      else if (cursor && cursor.kind !== Kind.NULL) literalCursor = true;
      resuming ||= resumes(selection.arguments ?? [], variables);
      shared ??= field;
    }
    if (!shared) return undefined;
    const joinable = !literalCursor && operation.selectionSet.selections.length === 1;
    return { shared, resuming, joinable, cursorVariables };
  }

  /** The stream of `key`, created by `create` when there is none; one creation at a time per key. */
  const creating = new Map<string, Promise<SharedStream | undefined>>();
  function streamOf(key: string, create: () => Promise<SharedStream | undefined>): Promise<SharedStream | undefined> {
    const existing = streams.get(key);
    if (existing) return Promise.resolve(existing);
    let pending = creating.get(key);
    if (!pending) {
      pending = create().finally(() => creating.delete(key));
      creating.set(key, pending);
    }
    return pending;
  }

  function newStream(key: string, shared: SharedField, source: AsyncIterableIterator<ExecutionResult>): SharedStream {
    const stream = createSharedStream(
      source,
      shared.kind,
      shared.maxBuffer,
      () => {
        if (streams.get(key) !== stream) return;
        streams.delete(key);
        keys.delete(key);
      },
      {
        field: shared.field,
        ...(options.observer && { observer: options.observer }),
        ...(options.pacer && { pacer: options.pacer }),
      },
    );
    streams.set(key, stream);
    keys.set(key, key);
    return stream;
  }

  return {
    stats: () => ({ streams: streams.size, subscribers: [...streams.values()].reduce((n, s) => n + s.size(), 0) }),
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const { document, operationName, variableValues } = args as ExecutionArgs;
      const variables = variableValues ?? {};
      const operation = sharedOperationOf(document, operationName, variables);
      if (!operation) return;
      const { shared, cursorVariables } = operation;
      const lastEventSeq = (args.contextValue as CursorContext | undefined)?.lastEventSeq;
      // A snapshot stream starts with the current state whatever the cursor (Last-Event-ID):
      // shared; an explicit afterSeq on one runs on its own, as before.
      const resuming = operation.resuming || (shared.kind === 'events' && lastEventSeq !== undefined);
      if (resuming && (shared.kind !== 'events' || !operation.joinable)) return;
      const keyed = { ...variables };
      for (const name of cursorVariables) delete keyed[name];
      const text = `${printOnce(document)}\u0000${operationName ?? ''}\u0000${stableJson(keyed)}`;
      const key = keys.get(text) ?? text;

      if (resuming) {
        // A resuming subscriber of an event stream replays its own past (resume.ts), then joins the
        // topic's one shared stream: otherwise every event is executed once per resumed subscriber
        // for as long as it stays (a whole venue after an instance died: RELIABILITY.md, "Reconnect
        // storm").
        setSubscribeFn(async (subscribeArgs) => {
          const own: unknown = await subscribeFn(subscribeArgs);
          // RESYNC_REQUIRED, NOT_FOUND, FORBIDDEN: this subscriber's alone.
          if (!isAsyncIterable(own)) return own;
          const context = subscribeArgs.contextValue as DirectSinkContext & ClientBacklogContext & CursorContext;
          const stream = await streamOf(key, async () => {
            // The same operation live from now, in a context of its own (its cursor slot is not the
            // subscriber's, and no Last-Event-ID): the stream every later subscriber shares.
            const live: ExecutionArgs = {
              ...(subscribeArgs as ExecutionArgs),
              variableValues: { ...variables, ...Object.fromEntries(cursorVariables.map((name) => [name, null])) },
              contextValue: { ...context, lastEventSeq: undefined, streamCursor: undefined },
            };
            const source: unknown = await subscribeFn(live);
            if (!isAsyncIterable(source)) return undefined;
            const raced = streams.get(key);
            if (raced) void (source as AsyncIterableIterator<ExecutionResult>).return?.();
            return raced ?? newStream(key, shared, source as AsyncIterableIterator<ExecutionResult>);
          }).catch(() => undefined);
          // No shared stream to join: the replay serves on its own, as an unshared operation.
          if (!stream) return own;
          // Its results reach the client in order through the iterator until the hand-off, then
          // through the sink: no read-ahead in between (delivery.ts), the shared stream bounds it.
          context.sharedDelivery = true;
          return stream.join(context.directSink, (own as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]());
        });
        return;
      }

      setSubscribeFn(async (subscribeArgs) => {
        const context = subscribeArgs.contextValue as (DirectSinkContext & ClientBacklogContext) | undefined;
        const sink = context?.directSink;
        // This operation's backpressure is the shared stream's (per subscriber), not delivery.ts's.
        if (context) context.sharedDelivery = true;
        const existing = streams.get(key);
        if (existing) return existing.attach(sink);
        const source: unknown = await subscribeFn(subscribeArgs);
        // Errors before the stream starts (NOT_FOUND, FORBIDDEN) are this subscriber's alone.
        if (!isAsyncIterable(source)) return source;
        const raced = streams.get(key);
        if (raced) {
          // Another first subscriber finished setting up while we awaited: join theirs.
          void (source as AsyncIterableIterator<ExecutionResult>).return?.();
          return raced.attach(sink);
        }
        return newStream(key, shared, source as AsyncIterableIterator<ExecutionResult>).attach(sink);
      });
    },
  };
}
