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
 *   latest result, and a slow subscriber only ever holds the newest one (conflation).
 * - 'events': every event matters (bursts, transitions): no replay, a bounded per-subscriber
 *   queue; a subscriber that falls `maxBuffer` behind is ended with an error.
 * Operations that mix shared and other root fields, or use fragments/directives at the root,
 * run unshared.
 */
import { getOperationAST, Kind, print, type DocumentNode, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

export type SharedKind = 'snapshot' | 'events';

interface Subscriber {
  queue: ExecutionResult[];
  waiting?: (result: IteratorResult<ExecutionResult>) => void;
  failed?: Error;
  done: boolean;
}

interface SharedStream {
  attach(): AsyncIterableIterator<ExecutionResult>;
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

function createSharedStream(
  source: AsyncIterableIterator<ExecutionResult>,
  kind: SharedKind,
  maxBuffer: number,
  onEmpty: () => void,
): SharedStream {
  const subscribers = new Set<Subscriber>();
  let latest: ExecutionResult | undefined;
  let ended = false;

  const deliver = (subscriber: Subscriber, result: ExecutionResult): void => {
    if (subscriber.done) return;
    if (subscriber.waiting) {
      const wake = subscriber.waiting;
      subscriber.waiting = undefined;
      wake({ value: result, done: false });
    } else if (kind === 'snapshot') {
      subscriber.queue[0] = result;
    } else if (subscriber.queue.length >= maxBuffer) {
      finish(subscriber, new Error(`subscriber fell ${maxBuffer} events behind and was disconnected`));
    } else {
      subscriber.queue.push(result);
    }
  };

  const finish = (subscriber: Subscriber, failure?: Error): void => {
    if (subscriber.done) return;
    subscriber.done = true;
    subscriber.failed = failure;
    subscribers.delete(subscriber);
    const wake = subscriber.waiting;
    subscriber.waiting = undefined;
    wake?.({ value: undefined, done: true });
    if (subscribers.size === 0 && !ended) {
      ended = true;
      onEmpty();
      void source.return?.();
    }
  };

  // One pump for everyone: each result is produced once.
  void (async () => {
    try {
      for await (const result of source) {
        if (kind === 'snapshot') latest = result;
        for (const subscriber of subscribers) deliver(subscriber, result);
      }
    } catch (error) {
      for (const subscriber of [...subscribers]) {
        deliver(subscriber, { errors: [error as never] });
      }
    } finally {
      if (!ended) {
        ended = true;
        onEmpty();
      }
      for (const subscriber of [...subscribers]) {
        // Let queued results drain; the iterator reports done once its queue is empty.
        subscriber.done = true;
        subscribers.delete(subscriber);
        const wake = subscriber.waiting;
        subscriber.waiting = undefined;
        wake?.({ value: undefined, done: true });
      }
    }
  })();

  return {
    size: () => subscribers.size,
    attach() {
      const subscriber: Subscriber = { queue: latest ? [latest] : [], done: false };
      subscribers.add(subscriber);
      const iterator: AsyncIterableIterator<ExecutionResult> = {
        next() {
          if (subscriber.queue.length > 0) return Promise.resolve({ value: subscriber.queue.shift()!, done: false });
          if (subscriber.failed) return Promise.reject(subscriber.failed);
          if (subscriber.done) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve) => (subscriber.waiting = resolve));
        },
        return() {
          subscriber.queue.length = 0;
          finish(subscriber);
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
  };
}

export interface SharedSubscriptionsOptions {
  /** Root subscription fields whose results do not depend on the viewer. */
  fields: Record<string, SharedKind>;
  maxBuffer?: number;
}

export interface SharedSubscriptionsPlugin extends Plugin {
  /** Shared streams and their subscribers, for metrics and tests. */
  stats(): { streams: number; subscribers: number };
}

export function useSharedSubscriptions(options: SharedSubscriptionsOptions): SharedSubscriptionsPlugin {
  const { fields, maxBuffer = 1_000 } = options;
  const streams = new Map<string, SharedStream>();

  function kindOf(document: DocumentNode, operationName: string | null | undefined): SharedKind | undefined {
    const operation = getOperationAST(document, operationName);
    if (operation?.operation !== 'subscription') return undefined;
    let kind: SharedKind | undefined;
    for (const selection of operation.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || selection.directives?.length) return undefined;
      const fieldKind = fields[selection.name.value];
      if (!fieldKind || (kind && kind !== fieldKind)) return undefined;
      kind = fieldKind;
    }
    return kind;
  }

  return {
    stats: () => ({ streams: streams.size, subscribers: [...streams.values()].reduce((n, s) => n + s.size(), 0) }),
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const kind = kindOf(args.document, args.operationName);
      if (!kind) return;
      const key = `${printOnce(args.document)}\u0000${args.operationName ?? ''}\u0000${stableJson(args.variableValues ?? {})}`;
      setSubscribeFn(async (subscribeArgs) => {
        const existing = streams.get(key);
        if (existing) return existing.attach();
        const source = await subscribeFn(subscribeArgs);
        // Errors before the stream starts (NOT_FOUND, FORBIDDEN) are this subscriber's alone.
        if (!isAsyncIterable(source)) return source;
        const raced = streams.get(key);
        if (raced) {
          // Another first subscriber finished setting up while we awaited: join theirs.
          void (source as AsyncIterableIterator<ExecutionResult>).return?.();
          return raced.attach();
        }
        const stream = createSharedStream(source as AsyncIterableIterator<ExecutionResult>, kind, maxBuffer, () => {
          if (streams.get(key) === stream) streams.delete(key);
        });
        streams.set(key, stream);
        return stream.attach();
      });
    },
  };
}
