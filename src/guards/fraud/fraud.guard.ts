/**
 * The fraud stage of the guard pipeline (auth → rate → fraud → service). Votes and reactions are
 * scored before they count (fraud.engine.ts, fraud.rules.ts):
 *   ALLOW  nothing happens;
 *   FLAG   the action proceeds and an alert is raised (persisted and published off the hot path);
 *   BLOCK  an alert is raised and FRAUD_BLOCKED is thrown: the service never runs, nothing counts.
 * Every decision is counted per kind and competition/session (fraudStats).
 *
 * If the state store fails (Redis unreachable), the action is allowed and the failure logged:
 * an outage of the fraud state must not take voting down with it.
 */
import type { FraudGuard } from '../guards.js';
import type { FraudDecision, FraudEngine } from './fraud.engine.js';
import { fraudBlocked } from './fraud.errors.js';
import type { FraudRule } from './fraud.rules.js';
import type { FraudStateStore } from './fraud.store.js';

export interface FraudAlertInput {
  userId: string;
  /** Votes: the competition. Reactions: null here (the alert writer resolves the session's competition). */
  competitionId: string | null;
  /** Reactions: the session. */
  sessionId: string | null;
  /** The strongest rule. */
  rule: FraudRule;
  score: number;
  action: 'FLAG' | 'BLOCK';
  details: Record<string, unknown>;
}

/** Takes alerts without waiting for them to be stored. */
export interface FraudAlertSink {
  raise(alert: FraudAlertInput): void;
}

/** FRAUD_DETECTION_ENABLED=false. */
export const fraudGuardDisabled: FraudGuard = { check: async () => undefined };

export function alertOf(decision: FraudDecision): FraudAlertInput | null {
  if (decision.verdict === 'ALLOW' || decision.primary === null) return null;
  const subject = decision.subject;
  return {
    userId: decision.userId,
    competitionId: subject.kind === 'vote' ? subject.competitionId : null,
    sessionId: subject.kind === 'reaction' ? subject.sessionId : null,
    rule: decision.primary,
    score: decision.score,
    action: decision.verdict,
    details: {
      kind: decision.kind,
      ...(subject.kind === 'vote' ? { submissionIds: [...subject.submissionIds] } : { sessionId: subject.sessionId }),
      rules: decision.rules.map((r) => ({ rule: r.rule, score: r.score, ...r.details })),
      ip: decision.ip,
      deviceId: decision.deviceId,
    },
  };
}

const ERROR_LOG_INTERVAL_MS = 10_000;

export function createFraudGuard(deps: {
  engine: FraudEngine;
  store: FraudStateStore;
  alerts: FraudAlertSink;
  onError: (message: string, details: Record<string, unknown>) => void;
  /** Every verdict (metrics). */
  onDecision?: (decision: FraudDecision) => void;
}): FraudGuard {
  const { engine, store, alerts } = deps;
  let lastErrorLog = 0;
  let suppressed = 0;

  return {
    async check(subject, caller) {
      let decision: FraudDecision | null;
      try {
        decision = await engine.evaluate(subject, caller);
      } catch (error) {
        // Fail open, and do not flood the log while the store is down.
        suppressed += 1;
        if (Date.now() - lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
          deps.onError('fraud check failed; action allowed', { error, failures: suppressed });
          lastErrorLog = Date.now();
          suppressed = 0;
        }
        return;
      }
      if (decision === null) return;
      store.countDecision(decision.kind, decision.scopeId, decision.verdict);
      deps.onDecision?.(decision);
      const alert = alertOf(decision);
      if (alert) alerts.raise(alert);
      if (decision.verdict === 'BLOCK') throw fraudBlocked();
    },
  };
}
