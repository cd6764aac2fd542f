/**
 * GraphqlSseStore and GraphqlSseRelay on Redis, shared by every instance.
 *
 * KEYS  gsse:{<token>}  hash, one per reservation:
 *         owner  '' while reserved, then the instance id holding the stream
 *         n      how many operations were queued (their order)
 *         p:<operationId>  `<n>\n<PendingOperation JSON>` for each operation queued before the
 *                stream connected (JSON holds no raw newline)
 *       TTL reservationTtlMs from the PUT; once connected, the owner refreshes it every ttl/3
 *       while the stream lives and deletes it when the stream ends, so the entry of an instance
 *       that died goes after at most ttl.
 * Each step that reads and writes is one Lua script (graphql-sse.lua.ts, atomic): a POST queued on one instance and
 * the stream connected on another never lose the operation (it is queued before the connect and
 * handed to it, or it sees the stream connected and is forwarded).
 *
 * Relay: each instance SUBSCRIBEs to `gsse:relay:<instanceId>` (on the shared subscriber
 * connection, once; SSUBSCRIBE on a cluster); a forwarded request is a PUBLISH there, whose
 * receiver count tells at once when no such instance listens (SPUBLISH counts the channel's
 * shard, where its subscriber is), and the answer comes back on the sender's own channel.
 */
import { pipelines, type RedisClient, type RedisPubSub } from '../infra/redis.js';
import { bindScripts } from '../infra/redis-scripts.js';
import { CONNECT, DEQUEUE, ENQUEUE } from './graphql-sse.lua.js';
import type {
  GraphqlSseRelay,
  GraphqlSseStore,
  PendingOperation,
  RelayedAnswer,
  RelayedRequest,
  StreamLocation,
} from './graphql-sse.store.js';

const entryKey = (token: string): string => `gsse:{${token}}`;

function located(reply: readonly unknown[]): StreamLocation {
  return reply[0] === 2 ? { state: 'connected', owner: String(reply[1]) } : { state: 'unknown' };
}

export function createRedisGraphqlSseStore(deps: {
  redis: RedisClient;
  reservationTtlMs: number;
  onError?: (error: unknown) => void;
}): GraphqlSseStore {
  const { redis, reservationTtlMs: ttlMs } = deps;
  /** Tokens whose streams this instance holds: their entries are refreshed. */
  const held = new Set<string>();
  const releasing = new Set<Promise<unknown>>();
  const scripts = bindScripts(redis, { CONNECT, ENQUEUE, DEQUEUE });

  async function refresh(): Promise<void> {
    const tokens = [...held];
    for (let i = 0; i < tokens.length; i += 1_000) {
      await pipelines(
        redis,
        tokens.slice(i, i + 1_000).map((token) => ({
          key: entryKey(token),
          queue: (pipeline) => void pipeline.pexpire(entryKey(token), ttlMs),
        })),
      );
    }
  }
  const timer = setInterval(
    () => void refresh().catch((error) => deps.onError?.(error)),
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  timer.unref();

  return {
    async reserve(token) {
      await redis.multi().hset(entryKey(token), 'owner', '', 'n', 0).pexpire(entryKey(token), ttlMs).exec();
    },
    async connect(token, owner) {
      const reply = await scripts.CONNECT([entryKey(token)], [owner, ttlMs]);
      if (reply === 0) return 'unknown';
      if (reply === 1) return 'open';
      held.add(token);
      const pending = reply.map((value) => {
        const cut = value.indexOf('\n');
        return { n: Number(value.slice(0, cut)), operation: JSON.parse(value.slice(cut + 1)) as PendingOperation };
      });
      return { pending: pending.sort((a, b) => a.n - b.n).map((p) => p.operation) };
    },
    async locate(token) {
      const owner = await redis.hget(entryKey(token), 'owner');
      return owner === null
        ? { state: 'unknown' }
        : owner === ''
          ? { state: 'reserved' }
          : { state: 'connected', owner };
    },
    async enqueue(token, operation, max) {
      const reply = await scripts.ENQUEUE([entryKey(token)], [operation.id, JSON.stringify(operation), max]);
      return reply[0] === 1 ? 'queued' : reply[0] === 3 ? 'duplicate' : reply[0] === 4 ? 'full' : located(reply);
    },
    async dequeue(token, operationId) {
      const reply = await scripts.DEQUEUE([entryKey(token)], [operationId]);
      return reply[0] === 1 ? 'removed' : located(reply);
    },
    async release(token) {
      held.delete(token);
      const deleted = redis.del(entryKey(token));
      releasing.add(deleted);
      try {
        await deleted;
      } finally {
        releasing.delete(deleted);
      }
    },
    async close() {
      clearInterval(timer);
      await Promise.allSettled([...releasing]);
    },
  };
}

const relayChannel = (instanceId: string): string => `gsse:relay:${instanceId}`;

type RelayMessage =
  { k: 'q'; n: number; from: string; request: RelayedRequest } | { k: 'a'; n: number; answer: RelayedAnswer };

const FAILED: RelayedAnswer = { status: 500, headers: [], body: null };

export function createRedisGraphqlSseRelay(deps: {
  pubsub: RedisPubSub;
  instanceId: string;
  /** How long a forwarded request waits for its answer (the operation's start included). */
  timeoutMs?: number;
  onError?: (message: string, details: Record<string, unknown>) => void;
}): GraphqlSseRelay {
  const { pubsub, instanceId, timeoutMs = 15_000 } = deps;
  const channel = relayChannel(instanceId);
  const waiting = new Map<
    number,
    { resolve: (answer: RelayedAnswer | 'gone' | 'timeout') => void; timer: NodeJS.Timeout }
  >();
  let serve: ((request: RelayedRequest) => Promise<RelayedAnswer>) | undefined;
  let sent = 0;

  const settle = (n: number, answer: RelayedAnswer | 'gone' | 'timeout'): void => {
    const waiter = waiting.get(n);
    if (!waiter) return;
    waiting.delete(n);
    clearTimeout(waiter.timer);
    waiter.resolve(answer);
  };

  function answer(to: string, n: number, reply: RelayedAnswer): void {
    pubsub
      .publish(relayChannel(to), JSON.stringify({ k: 'a', n, answer: reply } satisfies RelayMessage))
      .catch((error: unknown) => {
        deps.onError?.('graphql-sse relay: answering a forwarded request failed', { error, to });
      });
  }

  // The bus's event target listens on the same connection and ignores channels it did not subscribe, as this does.
  const onMessage = (from: string, text: string): void => {
    if (from !== channel) return;
    let message: RelayMessage;
    try {
      message = JSON.parse(text) as RelayMessage;
    } catch (error) {
      deps.onError?.('graphql-sse relay: unreadable message', { error });
      return;
    }
    if (message.k === 'a') return settle(message.n, message.answer);
    if (!serve) return answer(message.from, message.n, FAILED);
    serve(message.request).then(
      (reply) => answer(message.from, message.n, reply),
      (error: unknown) => {
        deps.onError?.('graphql-sse relay: a forwarded request failed', { error });
        answer(message.from, message.n, FAILED);
      },
    );
  };
  const off = pubsub.onMessage(onMessage);
  const ready = pubsub.subscribe(channel);
  ready.catch(() => undefined); // awaited by whoever needs it; not an unhandled rejection meanwhile

  return {
    ready,
    async forward(owner, request) {
      // The answer comes back on this instance's own channel: listen there before asking.
      await ready;
      const n = (sent += 1);
      return new Promise((resolve) => {
        const timer = setTimeout(() => settle(n, 'timeout'), timeoutMs);
        timer.unref();
        waiting.set(n, { resolve, timer });
        pubsub
          .publish(relayChannel(owner), JSON.stringify({ k: 'q', n, from: instanceId, request } satisfies RelayMessage))
          .then(
            (receivers) => {
              if (receivers === 0) settle(n, 'gone');
            },
            (error: unknown) => {
              deps.onError?.('graphql-sse relay: forwarding a request failed', { error, owner });
              settle(n, 'timeout');
            },
          );
      });
    },
    serve(answerWith) {
      serve = answerWith;
    },
    async close() {
      off();
      for (const n of [...waiting.keys()]) settle(n, 'gone');
      await pubsub.unsubscribe(channel).catch(() => undefined);
    },
  };
}
