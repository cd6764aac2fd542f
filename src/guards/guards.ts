/**
 * The guard pipeline every mutation passes, in one order: authentication (scope-auth on the
 * field), then rate limits, then fraud checks, then the service. A mutation declares its stages
 * in its definition (`guard: { rate, fraud }`), and src/schema/guard-plugin.ts calls `run` with
 * them after scope-auth and before the resolver; resolvers never call it, and nothing else decides
 * the order. Each stage is an interface with its implementation chosen in app.ts.
 */
import type { Viewer } from './auth.js';

/** Who is calling, as the guards see it. */
export interface Caller {
  viewer: Viewer | null;
  /** Client IP: the socket's peer, or the last X-Forwarded-For entry (the one our proxy added) when TRUST_PROXY is on. */
  clientIp: string;
  /** Optional device fingerprint sent by the app (header `x-device-id`, or graphql-ws connectionParams.deviceId). */
  deviceId: string | null;
}

/** Named limits, configured by environment (RATE_LIMIT_*); see rate-limit.ts. */
export type RateRule = string;

export interface RateGuard {
  /** Counts one call against `rule` for this caller; throws RATE_LIMITED (with retryAfterMs) when over. */
  consume(rule: RateRule, caller: Caller): Promise<void>;
}

export type FraudSubject =
  /** `votes`: QUADRATIC only, the votes the ballot sets on its submission (re-allocating them is an adjustment, not a new action). */
  | { kind: 'vote'; competitionId: string; submissionIds: readonly string[]; votes?: number | null }
  | { kind: 'reaction'; sessionId: string };

export interface FraudGuard {
  /** Scores the action; throws FRAUD_BLOCKED to stop it, records an alert when it only flags. */
  check(subject: FraudSubject, caller: Caller): Promise<void>;
}

/** One call's stages: its rate rule, and the fraud check's subject when the operation has one. */
export interface GuardSpec {
  rate: RateRule;
  fraud?: FraudSubject;
}

export interface Guards {
  run(caller: Caller, spec: GuardSpec): Promise<void>;
}

export function createGuards(stages: { rate: RateGuard; fraud: FraudGuard }): Guards {
  return {
    async run(caller, spec) {
      await stages.rate.consume(spec.rate, caller);
      if (spec.fraud !== undefined) await stages.fraud.check(spec.fraud, caller);
    },
  };
}
