/**
 * Rate limits: the RateGuard of the guard pipeline (auth → rate → fraud → service) and the
 * subscription limits (src/guards/subscription-limits.ts) share one limiter.
 *
 * Configuration keeps graphql-rate-limit's surface: a rule is its `{ window: '1m', max: 30,
 * message, identityArgs }` (GraphQLRateLimitDirectiveArgs), the key of a call is its
 * `getFieldIdentity(rule, identityArgs, args)` plus the caller's identity, and messages come from
 * a `formatError(FormatErrorInput)`. Counting does not use its `Store`: that interface is
 * read-then-write (`getForIdentity`, then `setForIdentity` with the whole timestamp list), so two
 * instances (or two concurrent calls on one) both read "29 of 30" and both pass. Here one call is
 * one atomic check-and-count in the store: a Lua script on Redis (rate-limit.lua.ts), a
 * synchronous step in memory (rate-limit.memory.ts). Both implement the same two kinds of rule:
 * - `{ window, max }`: an exact sliding log; a call is admitted iff fewer than `max` calls were
 *   admitted in the last `window`;
 * - `{ window, max, burst }`: a token bucket of `burst` tokens, full at first, refilled at `max`
 *   per `window` (one every window/max); a call is admitted iff a token is left. For
 *   work that legitimately comes in bursts: a page opening its subscriptions at once.
 * Refused calls count for nothing in either.
 *
 * Escalation: the first over-limit call of an episode is a strike; it blocks the identity for this
 * rule for `blockBaseMs × 2^(strikes − 1)` (capped at `blockMaxMs`), or until the window frees a
 * slot if that is later. Calls during a block are refused without new strikes and are not
 * counted. Strikes are forgotten `strikeTtlMs` after the last one. RATE_LIMITED always carries
 * `retryAfterMs` (> 0) and `retryable: true`.
 *
 * Identity: the signed-in user (`user:<id>`), else the client IP (`ip:<addr>`, IPv6 by its /64),
 * whose budget is the rule's × `ipFactor`: one address is often many people (NAT, venue Wi-Fi).
 * A bucket may size an IP's burst on its own (`ipBurst`): a venue's audience reconnecting at once
 * after an instance dies is thousands of starts from one address, not 20 users' worth. And a
 * bucket never blocks an IP: escalation punishes one client that ignores `retryAfterMs`, but an
 * IP is a whole venue, and blocking it for a minute because its storm overflowed the bucket locks
 * everyone there out; the refill alone already bounds what the address gets.
 */
import { isIP } from 'node:net';
import { getFieldIdentity, type FormatErrorInput, type GraphQLRateLimitDirectiveArgs } from 'graphql-rate-limit';
import type { Config } from '../config.js';
import { AppError, ErrorCode } from '../errors.js';
import type { Caller, RateGuard, RateRule } from './guards.js';

/**
 * A rule as graphql-rate-limit spells it (`window` in its `ms` syntax: '1m', '30s', '500ms'), plus
 * an optional `burst`: then `max` per `window` is the bucket's refill and `burst` its size.
 */
export type RateLimitOptions = Pick<GraphQLRateLimitDirectiveArgs, 'window' | 'max' | 'message' | 'identityArgs'> & {
  burst?: number;
  /** With `burst`: the bucket's size for an anonymous caller (one IP) [burst × ipFactor]. */
  ipBurst?: number;
};

/** One rule's limit for one identity, as the store counts it: a sliding log, or a token bucket with `burst`. */
export interface RateLimit {
  windowMs: number;
  max: number;
  burst?: number;
}

/** The budget of every rule name without its own entry in rateRulesFromConfig (each such name is still counted on its own). */
export const DEFAULT_RULE = 'mutations';
/** Subscription operations started (src/guards/subscription-limits.ts). */
export const SUBSCRIPTIONS_RULE = 'subscriptions';
/** What a Query field without a `guard` of its own counts against. */
export const QUERIES_RULE = 'queries';

export interface Escalation {
  blockBaseMs: number;
  blockMaxMs: number;
  strikeTtlMs: number;
}

export interface RateDecision {
  admitted: boolean;
  /** Calls left in the window after this one (0 when refused). */
  remaining: number;
  /** 0 when admitted; else when a retry can succeed (window frees a slot or the block ends). */
  retryAfterMs: number;
  /** Violations remembered for this identity and rule (0 when admitted). */
  strikes: number;
  /** This refusal is a new strike (it starts a block), not a call refused during one. */
  struck?: boolean;
}

/** The counting step: atomic across every caller of the same store. */
export interface RateLimitStore {
  hit(key: string, limit: RateLimit, escalation: Escalation): Promise<RateDecision>;
  close(): Promise<void>;
}

/** The rules the contract and the product name; RATE_LIMIT_* in config.ts. */
export function rateRulesFromConfig(rate: Config['rateLimit']): Record<string, RateLimitOptions> {
  return {
    votes: { window: '1m', max: rate.votesPerMinute },
    reactions: { window: '1m', max: rate.reactionsPerMinute },
    messages: { window: '1m', max: rate.messagesPerMinute },
    typing: { window: '1m', max: rate.typingPerMinute },
    presence: { window: '1m', max: rate.presencePerMinute },
    polls: { window: '1m', max: rate.pollsPerMinute },
    [QUERIES_RULE]: { window: '1m', max: rate.queriesPerMinute },
    pledges: { window: '1m', max: rate.pledgesPerMinute },
    [SUBSCRIPTIONS_RULE]: {
      window: '1m',
      max: rate.subscriptionsPerMinute,
      burst: rate.subscriptionsBurst,
      ipBurst: rate.subscriptionsIpBurst,
    },
    [DEFAULT_RULE]: { window: '1m', max: rate.mutationsPerMinute },
  };
}

/** Refusals wait for the limit to free a call, never longer (blockBaseMs 0 in both stores). */
const NO_BLOCK: Escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 60_000 };

export function escalationFromConfig(rate: Config['rateLimit']): Escalation {
  return { blockBaseMs: rate.blockBaseMs, blockMaxMs: rate.blockMaxMs, strikeTtlMs: rate.strikeTtlMs };
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  sec: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  d: 86_400_000,
};

/** graphql-rate-limit's window syntax (a subset of `ms`): a number of ms, or '<n><ms|s|m|h|d>'. */
export function parseWindow(window: string | number | undefined, fallbackMs = 60_000): number {
  if (window === undefined) return fallbackMs;
  if (typeof window === 'number') {
    if (!Number.isFinite(window) || window <= 0) throw new Error(`invalid rate limit window ${window}`);
    return Math.floor(window);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d)?\s*$/i.exec(window);
  if (!match) throw new Error(`invalid rate limit window "${window}"`);
  const ms = Number(match[1]) * UNITS[(match[2] ?? 'ms').toLowerCase()]!;
  if (!(ms >= 1)) throw new Error(`invalid rate limit window "${window}"`);
  return Math.floor(ms);
}

/** How long the `strikes`-th violation blocks: base × 2^(strikes − 1), at most max; 0 = no blocking. */
export function blockDurationMs(strikes: number, escalation: Pick<Escalation, 'blockBaseMs' | 'blockMaxMs'>): number {
  if (strikes < 1 || escalation.blockBaseMs <= 0) return 0;
  return Math.min(escalation.blockBaseMs * 2 ** Math.min(strikes - 1, 40), escalation.blockMaxMs);
}

/** An IP as a rate-limit identity: IPv4 as is, IPv6 by its /64 (one host usually owns the whole prefix). */
export function ipIdentity(ip: string): string {
  const addr = ip
    .trim()
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) return mapped[1]!;
  const kind = isIP(addr);
  if (kind === 4) return addr;
  if (kind === 6) return `${expandIpv6(addr).slice(0, 4).join(':')}::/64`;
  // Not an address (a proxy's odd X-Forwarded-For): keep it bounded.
  return addr.slice(0, 64) || 'unknown';
}

function expandIpv6(addr: string): string[] {
  let text = addr.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => group.replace(/^0+(?=.)/, ''));
}

/** Who a call counts against, and whether it is anonymous (then the IP budget applies). */
export function callerIdentity(caller: Caller): { id: string; anonymous: boolean } {
  return caller.viewer
    ? { id: `user:${caller.viewer.id}`, anonymous: false }
    : { id: `ip:${ipIdentity(caller.clientIp)}`, anonymous: true };
}

function describeWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} hours`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} minutes`;
  if (ms % 1_000 === 0) return ms === 1_000 ? 'second' : `${ms / 1_000} seconds`;
  return `${ms} ms`;
}

/** graphql-rate-limit's formatError, with our wording (no identity in the text: it may be an IP). */
export function formatRateLimitError({ fieldName, max, window }: FormatErrorInput): string {
  return `Too many ${fieldName} requests: at most ${max} per ${describeWindow(window)}`;
}

export function rateLimited(
  message: string,
  details: { retryAfterMs: number; rule: string; limit: number; windowMs: number; burst?: number },
): AppError {
  return new AppError(ErrorCode.RATE_LIMITED, message, {
    ...details,
    retryAfterMs: Math.max(1, Math.ceil(details.retryAfterMs)),
  });
}

interface CompiledRule {
  name: string;
  windowMs: number;
  max: number;
  burst: number | undefined;
  ipBurst: number | undefined;
  message: string | undefined;
  identityArgs: readonly string[];
}

export interface RateLimiter extends RateGuard {
  /** Counts one call; resolves with the decision (never throws RATE_LIMITED). `args` feed identityArgs. */
  check(
    rule: RateRule,
    caller: Caller,
    args?: Record<string, unknown>,
  ): Promise<RateDecision & { limit: number; windowMs: number; burst?: number }>;
  /** Like `consume`, with the operation's arguments for rules that have identityArgs. */
  consumeWithArgs(rule: RateRule, caller: Caller, args: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export function createRateLimiter(deps: {
  store: RateLimitStore;
  rules: Record<string, RateLimitOptions>;
  escalation: Escalation;
  /** Anonymous callers (per IP) get max × ipFactor. */
  ipFactor: number;
  formatError?: (input: FormatErrorInput) => string;
  /** Every refused call, by rule (metrics). */
  onRefused?: (rule: RateRule, struck: boolean) => void;
}): RateLimiter {
  const compile = (name: string, options: RateLimitOptions): CompiledRule => {
    const max = options.max ?? 5;
    if (!Number.isInteger(max) || max < 1) throw new Error(`rate rule ${name}: max must be a positive integer`);
    const { burst } = options;
    if (burst !== undefined && (!Number.isInteger(burst) || burst < 1))
      throw new Error(`rate rule ${name}: burst must be a positive integer`);
    const { ipBurst } = options;
    if (ipBurst !== undefined && (burst === undefined || !Number.isInteger(ipBurst) || ipBurst < 1))
      throw new Error(`rate rule ${name}: ipBurst must be a positive integer, with a burst`);
    return {
      name,
      windowMs: parseWindow(options.window),
      max,
      burst,
      ipBurst,
      message: options.message,
      identityArgs: options.identityArgs ?? [],
    };
  };
  const rules = new Map(Object.entries(deps.rules).map(([name, options]) => [name, compile(name, options)]));
  const fallback = rules.get(DEFAULT_RULE) ?? compile(DEFAULT_RULE, { window: '1m', max: 120 });
  const formatError = deps.formatError ?? formatRateLimitError;

  async function check(ruleName: RateRule, caller: Caller, args: Record<string, unknown> = {}) {
    const rule = rules.get(ruleName) ?? { ...fallback, name: ruleName };
    const who = callerIdentity(caller);
    // An IP is many people: its bucket is as many times larger as it refills faster.
    const factor = who.anonymous ? deps.ipFactor : 1;
    const limit: RateLimit = { windowMs: rule.windowMs, max: rule.max * factor };
    if (rule.burst !== undefined) limit.burst = (who.anonymous ? rule.ipBurst : undefined) ?? rule.burst * factor;
    // graphql-rate-limit's key: the field identity (rule name + identityArgs values), per context identity.
    const key = `${who.id}|${getFieldIdentity(rule.name, rule.identityArgs, args)}`;
    // A bucket does not block an IP (see the header): refusals wait for the refill only.
    const escalation = who.anonymous && limit.burst !== undefined ? NO_BLOCK : deps.escalation;
    const decision = await deps.store.hit(key, limit, escalation);
    if (!decision.admitted) deps.onRefused?.(rule.name, decision.struck === true);
    return {
      ...decision,
      limit: limit.max,
      windowMs: limit.windowMs,
      ...(limit.burst !== undefined && { burst: limit.burst }),
    };
  }

  async function consumeWithArgs(ruleName: RateRule, caller: Caller, args: Record<string, unknown>): Promise<void> {
    const decision = await check(ruleName, caller, args);
    if (decision.admitted) return;
    const rule = rules.get(ruleName);
    const { limit, windowMs, burst } = decision;
    const message =
      rule?.message ??
      formatError({ fieldName: ruleName, contextIdentity: callerIdentity(caller).id, max: limit, window: windowMs }) +
        (burst === undefined ? '' : `, after a burst of ${burst}`);
    throw rateLimited(message, {
      retryAfterMs: decision.retryAfterMs,
      rule: ruleName,
      limit,
      windowMs,
      ...(burst !== undefined && { burst }),
    });
  }

  return {
    check,
    consumeWithArgs,
    consume: (ruleName, caller) => consumeWithArgs(ruleName, caller, {}),
    close: () => deps.store.close(),
  };
}
