/**
 * One check: look up the account's age (cached), record the action in the state store (one
 * round trip) and score what it returns. No side effects beyond the store: the guard
 * (fraud.guard.ts) counts, alerts and throws; the simulation (bench/fraud-sim.ts) calls this with
 * its own clock.
 */
import { createHash } from 'node:crypto';
import type { Caller, FraudSubject } from '../guards.js';
import {
  assess,
  CADENCE_SAMPLES,
  INSTANT_ACCOUNT_MS,
  QUICK_ACCOUNT_MS,
  type Assessment,
  type FraudFeatures,
  type FraudKind,
  type Thresholds,
} from './fraud.rules.js';
import type { FraudStateStore, ObservedCounts } from './fraud.store.js';
import { newId as uniqueId } from '../../infra/strings.js';

export interface FraudDecision extends Assessment {
  kind: FraudKind;
  /** competitionId for votes, sessionId for reactions. */
  scopeId: string;
  userId: string;
  ip: string;
  deviceId: string | null;
  at: number;
  subject: FraudSubject;
  features: FraudFeatures;
}

/** A crowd votes for the same few submissions: each distinct ballot is hashed once. */
const fingerprints = new Map<string, string>();
const MAX_FINGERPRINTS = 1_024;

/**
 * The ballot's submission ids in the order given (a ranking's order matters) and, for QUADRATIC,
 * the votes it sets: 1, 2 and 3 votes on one submission are three ballots. Without `votes`, the
 * fingerprint of what the ballot is for (its target). Null when empty.
 */
export function ballotFingerprint(submissionIds: readonly string[], votes: number | null = null): string | null {
  if (submissionIds.length === 0) return null;
  const ids = submissionIds.join('\u0000');
  const ballot = votes === null ? ids : `${ids}\u0001${votes}`;
  let fingerprint = fingerprints.get(ballot);
  if (fingerprint === undefined) {
    fingerprint = createHash('sha256').update(ballot).digest('base64url').slice(0, 16);
    if (fingerprints.size >= MAX_FINGERPRINTS) fingerprints.delete(fingerprints.keys().next().value!);
    fingerprints.set(ballot, fingerprint);
  }
  return fingerprint;
}

/** Gaps between consecutive times (ascending), the last CADENCE_SAMPLES of them. */
export function gapsOf(times: readonly number[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < times.length; i += 1) gaps.push(times[i]! - times[i - 1]!);
  return gaps.slice(-CADENCE_SAMPLES);
}

export function featuresOf(
  kind: FraudKind,
  counts: ObservedCounts,
  accountAgeMs: number | null,
  ballotSize: number | null,
): FraudFeatures {
  return {
    kind,
    userActions10s: counts.userActions10s,
    userActions60s: counts.userActions60s,
    userActions10m: counts.userActions10m,
    intervalsMs: gapsOf(counts.recentTimes),
    ipUsers: counts.ipUsers,
    ipInstantUsers: counts.ipInstantUsers,
    ipQuickUsers: counts.ipQuickUsers,
    deviceUsers: counts.deviceUsers,
    accountAgeMs,
    ballot:
      ballotSize === null || counts.ballotRepeats === null || counts.ipSameBallotUsers === null
        ? null
        : { size: ballotSize, userRepeats: counts.ballotRepeats, ipSameBallotUsers: counts.ipSameBallotUsers },
  };
}

export interface FraudEngine {
  /** Records and scores the action; null for anonymous callers (nothing to attribute). */
  evaluate(subject: FraudSubject, caller: Caller, at?: number): Promise<FraudDecision | null>;
}

export function createFraudEngine(deps: {
  store: FraudStateStore;
  thresholds: Thresholds;
  /** Epoch ms at which the account was created; null when unknown. */
  accountCreatedAt: (userId: string) => Promise<number | null>;
  now?: () => number;
  newId?: () => string;
}): FraudEngine {
  const { store, thresholds } = deps;
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? uniqueId;

  return {
    async evaluate(subject, caller, at) {
      const viewer = caller.viewer;
      if (viewer === null) return null;
      const createdAt = await deps.accountCreatedAt(viewer.id);
      const time = at ?? now();
      const accountAgeMs = createdAt === null ? null : Math.max(0, time - createdAt);
      const kind: FraudKind = subject.kind;
      const scopeId = subject.kind === 'vote' ? subject.competitionId : subject.sessionId;
      const votes = subject.kind === 'vote' ? (subject.votes ?? null) : null;
      const target = subject.kind === 'vote' ? ballotFingerprint(subject.submissionIds) : null;
      const ballot =
        subject.kind === 'vote' && votes !== null ? ballotFingerprint(subject.submissionIds, votes) : target;
      const counts = await store.observe({
        kind,
        at: time,
        id: newId(),
        userId: viewer.id,
        scopeId,
        ip: caller.clientIp,
        deviceId: caller.deviceId,
        instantAccount: accountAgeMs !== null && accountAgeMs < INSTANT_ACCOUNT_MS,
        quickAccount: accountAgeMs !== null && accountAgeMs < QUICK_ACCOUNT_MS,
        ballot,
        target,
        adjustable: votes !== null,
      });
      const features = featuresOf(
        kind,
        counts,
        accountAgeMs,
        ballot === null || subject.kind !== 'vote' ? null : subject.submissionIds.length,
      );
      return {
        ...assess(features, thresholds),
        kind,
        scopeId,
        userId: viewer.id,
        ip: caller.clientIp,
        deviceId: caller.deviceId,
        at: time,
        subject,
        features,
      };
    },
  };
}
