/**
 * Redis Lua scripts, one code path for every store: a script is defined once
 * (`defineScript`, next to its Lua in a `<store>.lua.ts` module) and bound to a connection
 * (`bindScripts`), which registers it there with ioredis's own `defineCommand`. Calling it is
 * then ioredis's job: EVAL with the source the first time on a socket, EVALSHA after that, and on
 * NOSCRIPT (the server lost its script cache: a restart, a failover, SCRIPT FLUSH) EVAL again,
 * singly and per command inside a pipeline alike.
 *
 * Not inside MULTI: there a NOSCRIPT comes back only in EXEC's reply, after the transaction's
 * other commands ran, so nothing can retry it (and ioredis keeps taking the script for loaded on
 * that socket). A script is atomic already; a step that needs more than one is one script.
 *
 * Header convention of every script (like centrifuge's `.lua` files): what it does, then
 *   KEYS[i]  the key, its type and what it holds
 *   ARGV[i]  each argument, with its unit
 *   Returns  the reply
 *   Slot     which key the others share a hash tag with: Redis Cluster runs a script only when
 *            all its KEYS hash to one slot, and a script touches no key it was not passed.
 */
import { pipelines, type PipelineGroup, type RedisClient } from './redis.js';

/** Lua: `now`, the Redis server's clock in ms, so instances with skewed clocks agree. */
export const LUA_NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

export type ScriptArg = string | number;

export interface RedisScript<Reply> {
  /** The command name on the connection: unique per connection, so prefixed by its module. */
  readonly name: string;
  /** How many KEYS every call passes, or 'dynamic' when the caller decides per call. */
  readonly keys: number | 'dynamic';
  readonly lua: string;
  /** Type only (never set): what the script returns, as ioredis converts Lua's reply. */
  readonly reply?: Reply;
}

export function defineScript<Reply = unknown>(script: {
  name: string;
  keys: number | 'dynamic';
  lua: string;
}): RedisScript<Reply> {
  if (!/^[a-zA-Z][a-zA-Z0-9]*$/.test(script.name))
    throw new Error(`Redis script name ${JSON.stringify(script.name)}: letters and digits only`);
  return script;
}

export interface ScriptCall {
  keys: readonly string[];
  args: readonly ScriptArg[];
}

export interface BoundScript<Reply> {
  /** One call, one round trip. */
  (keys: readonly string[], args: readonly ScriptArg[]): Promise<Reply>;
  /**
   * Many calls in one pipeline (one round trip; on a cluster, sent at once, each to its slot's
   * node); rejects with the first call's error.
   */
  many(calls: readonly ScriptCall[]): Promise<Reply[]>;
  /** The call as a group for `pipelines` (src/infra/redis.ts), beside other scripts' calls. */
  queued(call: ScriptCall): PipelineGroup;
}

export type ReplyOf<S> = S extends RedisScript<infer Reply> ? Reply : never;
type Command = (...args: ScriptArg[]) => unknown;

/** Scripts registered on each connection, by name: their Lua. */
const registered = new WeakMap<RedisClient, Map<string, string>>();

/**
 * Registers the scripts on this connection (once per connection: the stores sharing it share
 * them) and returns them callable. Throws if a name is taken by another script or by a built-in
 * command, which defineCommand would silently replace.
 */
export function bindScripts<S extends Record<string, RedisScript<unknown>>>(
  redis: RedisClient,
  scripts: S,
): { [K in keyof S]: BoundScript<ReplyOf<S[K]>> } {
  let known = registered.get(redis);
  if (!known) registered.set(redis, (known = new Map<string, string>()));
  const bound: Record<string, BoundScript<unknown>> = {};
  for (const [key, script] of Object.entries(scripts)) {
    const lua = known.get(script.name);
    if (lua === undefined) {
      if (script.name in redis)
        throw new Error(`Redis script ${script.name}: the connection already has a command of that name`);
      redis.defineCommand(script.name, { lua: script.lua });
      known.set(script.name, script.lua);
    } else if (lua !== script.lua) {
      throw new Error(`Redis script ${script.name}: another script of that name is registered on this connection`);
    }
    bound[key] = bind(redis, script);
  }
  return bound as { [K in keyof S]: BoundScript<ReplyOf<S[K]>> };
}

function bind<Reply>(redis: RedisClient, script: RedisScript<Reply>): BoundScript<Reply> {
  // Registered without numberOfKeys: every call passes its own count, whether fixed or dynamic.
  const argv = ({ keys, args }: ScriptCall): ScriptArg[] => {
    if (script.keys !== 'dynamic' && keys.length !== script.keys) {
      throw new Error(`Redis script ${script.name} takes ${script.keys} keys, got ${keys.length}`);
    }
    return [keys.length, ...keys, ...args];
  };
  /** The command defineCommand added: on the connection it answers, on a pipeline it queues. */
  const command = (target: object): Command => (target as Record<string, Command>)[script.name]!;
  const queued = (call: ScriptCall): PipelineGroup => ({
    key: call.keys[0] ?? script.name,
    queue: (pipeline) => void command(pipeline).apply(pipeline, argv(call)),
  });
  return Object.assign(
    async (keys: readonly string[], args: readonly ScriptArg[]) =>
      (await command(redis).apply(redis, argv({ keys, args }))) as Reply,
    {
      queued,
      async many(calls: readonly ScriptCall[]): Promise<Reply[]> {
        // A pipeline takes the connection's scripts when it is created, so after bindScripts.
        // Each call is its own group: one pipeline on one server, one per node on a cluster.
        const replies = await pipelines(
          redis,
          calls.map((call) => queued(call)),
        );
        return replies as Reply[];
      },
    },
  );
}
