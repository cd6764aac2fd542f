/**
 * Fraud alerts for admins: stored FraudAlert rows, the live alert stream, and decision counts.
 *
 * Alerts are raised by the fraud guard (src/guards/fraud/) on the hot path and written here off
 * it: `raise` only queues. One writer per instance stores them one at a time (so an attack never
 * piles alert inserts onto the database pool), each in a transaction that also takes the topics'
 * seqs, and publishes after the commit. Duplicates are dropped: one alert per user, rule and
 * action per `dedupeMs` (cluster-wide through the state store). Beyond `maxQueue` waiting alerts,
 * new ones are dropped and counted (decision counts still see every action).
 */
import type { PrismaClient, Prisma } from '../../generated/prisma/client.js';
import type { FraudAction } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';
import type { FraudAlertInput, FraudAlertSink } from '../../guards/fraud/fraud.guard.js';
import type { DecisionCounts, FraudStateStore } from '../../guards/fraud/fraud.store.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { appendToLog, eventLogHistory } from '../../realtime/event-log.js';
import { readEventPage, resumableStream, type EventPage } from '../../realtime/resume.js';
import { nextSeq } from '../../realtime/sequence.js';
import { ALL_ALERTS, fraudAlertTopic, viewOfAlert, type FraudAlertEvent, type FraudAlertView } from './fraud.events.js';

export const ALERTS_DEFAULT_FIRST = 50;
export const ALERTS_MAX_FIRST = 100;

export interface FraudRuleCount {
  rule: string;
  action: FraudAction;
  alerts: number;
}

export interface FraudStats {
  competitionId: string | null;
  votes: DecisionCounts;
  reactions: DecisionCounts;
  alerts: FraudRuleCount[];
  /** Alerts this instance dropped because its queue was full, since it started. */
  alertsDropped: number;
}

export interface FraudService extends FraudAlertSink {
  /** Stored alerts, newest first; of one competition or of all. */
  list(competitionId: string | null, first: number | null | undefined): Promise<FraudAlertView[]>;
  /**
   * Alerts in seq order, stored from now on or after `afterSeq` (from the history; RESYNC_REQUIRED
   * when no longer kept or ahead); resolves once the subscription is live.
   */
  subscribe(competitionId: string | null, afterSeq?: number | null): Promise<AsyncIterableIterator<FraudAlertEvent>>;
  /** fraudAlertEvents: the polling counterpart of subscribe. */
  events(
    competitionId: string | null,
    args: { afterSeq?: number | null; first?: number | null },
  ): Promise<EventPage<FraudAlertView>>;
  stats(competitionId: string | null): Promise<FraudStats>;
  /** Resolves when every alert raised so far is stored (or dropped). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

const SESSION_CACHE_LIMIT = 10_000;
const DROP_LOG_INTERVAL_MS = 10_000;

export function createFraudService(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  store: FraudStateStore;
  onError: (message: string, details: Record<string, unknown>) => void;
  dedupeMs?: number;
  maxQueue?: number;
  gapWaitMs?: number;
  /** RESUME_WINDOW_SECONDS: how long alert events are kept for resuming. */
  resumeWindowSeconds?: number;
  now?: () => number;
}): FraudService {
  const { prisma, bus, store } = deps;
  const dedupeMs = deps.dedupeMs ?? 60_000;
  const maxQueue = deps.maxQueue ?? 1_000;
  const gapWaitMs = deps.gapWaitMs ?? 150;
  const history = (competitionId: string | null) =>
    eventLogHistory<FraudAlertView>(prisma, fraudAlertTopic(competitionId), deps.resumeWindowSeconds ?? 300);
  const now = deps.now ?? Date.now;
  const queue: FraudAlertInput[] = [];
  const sessionCompetition = new Map<string, string | null>();
  let writing: Promise<void> | undefined;
  let dropped = 0;
  let lastDropLog = 0;

  async function competitionOfSession(sessionId: string): Promise<string | null> {
    if (sessionCompetition.has(sessionId)) return sessionCompetition.get(sessionId)!;
    const session = await prisma.eventSession.findUnique({ where: { id: sessionId }, select: { competitionId: true } });
    const competitionId = session?.competitionId ?? null;
    if (sessionCompetition.size >= SESSION_CACHE_LIMIT)
      sessionCompetition.delete(sessionCompetition.keys().next().value!);
    sessionCompetition.set(sessionId, competitionId);
    return competitionId;
  }

  async function write(alert: FraudAlertInput): Promise<void> {
    if (!(await store.claim(`${alert.userId}|${alert.rule}|${alert.action}`, dedupeMs, now()))) return;
    // A reaction alert belongs to its session's competition, so competition filters see it too.
    const competitionId = alert.competitionId ?? (alert.sessionId ? await competitionOfSession(alert.sessionId) : null);
    const { row, allSeq, competitionSeq } = await prisma.$transaction(async (tx) => {
      const row = await tx.fraudAlert.create({
        data: {
          userId: alert.userId,
          competitionId,
          rule: alert.rule,
          score: alert.score,
          action: alert.action,
          details: alert.details as Prisma.InputJsonValue,
        },
      });
      // Always 'all' first, then the competition: one lock order on every instance.
      const allSeq = await nextSeq(tx, fraudAlertTopic(null));
      const competitionSeq = competitionId === null ? null : await nextSeq(tx, fraudAlertTopic(competitionId));
      // The resume history of both streams, committed with their seqs.
      const data = viewOfAlert(row);
      await appendToLog(tx, [
        { topic: fraudAlertTopic(null), seq: allSeq, publishedAt: '', data },
        ...(competitionSeq === null
          ? []
          : [{ topic: fraudAlertTopic(competitionId), seq: competitionSeq, publishedAt: '', data }]),
      ]);
      return { row, allSeq, competitionSeq };
    });
    const data = viewOfAlert(row);
    const publishedAt = new Date().toISOString();
    bus.publish('fraudAlert', ALL_ALERTS, { topic: fraudAlertTopic(null), seq: allSeq, publishedAt, data });
    if (competitionId !== null && competitionSeq !== null) {
      bus.publish('fraudAlert', competitionId, {
        topic: fraudAlertTopic(competitionId),
        seq: competitionSeq,
        publishedAt,
        data,
      });
    }
  }

  async function pump(): Promise<void> {
    while (queue.length > 0) {
      const alert = queue.shift()!;
      try {
        await write(alert);
      } catch (error) {
        deps.onError('fraud alert could not be stored', { error, userId: alert.userId, rule: alert.rule });
      }
    }
  }

  return {
    raise(alert) {
      if (queue.length >= maxQueue) {
        dropped += 1;
        if (now() - lastDropLog >= DROP_LOG_INTERVAL_MS) {
          lastDropLog = now();
          deps.onError('fraud alert queue full; alerts dropped', { dropped });
        }
        return;
      }
      queue.push(alert);
      writing ??= pump().finally(() => (writing = undefined));
    },

    async list(competitionId, first) {
      const take = first ?? ALERTS_DEFAULT_FIRST;
      if (!Number.isInteger(take) || take < 1 || take > ALERTS_MAX_FIRST) {
        throw badInput('first', `first must be between 1 and ${ALERTS_MAX_FIRST}`);
      }
      const rows = await prisma.fraudAlert.findMany({
        where: competitionId === null ? {} : { competitionId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take,
      });
      return rows.map(viewOfAlert);
    },

    subscribe(competitionId, afterSeq) {
      return resumableStream({
        subscribe: () => bus.subscribe('fraudAlert', competitionId ?? ALL_ALERTS),
        history: history(competitionId),
        afterSeq,
        gapWaitMs,
      });
    },

    events(competitionId, args) {
      return readEventPage(history(competitionId), args);
    },

    async stats(competitionId) {
      const sessionIds =
        competitionId === null
          ? null
          : (await prisma.eventSession.findMany({ where: { competitionId }, select: { id: true } })).map(
              (s: { id: string }) => s.id,
            );
      const [votes, reactions, grouped] = await Promise.all([
        store.decisions('vote', competitionId === null ? null : [competitionId]),
        store.decisions('reaction', sessionIds),
        prisma.fraudAlert.groupBy({
          by: ['rule', 'action'],
          where: competitionId === null ? {} : { competitionId },
          _count: { _all: true },
        }),
      ]);
      const alerts = grouped
        .map((g: { rule: string; action: FraudAction; _count: { _all: number } }) => ({
          rule: g.rule,
          action: g.action,
          alerts: g._count._all,
        }))
        .sort(
          (a: FraudRuleCount, b: FraudRuleCount) =>
            b.alerts - a.alerts || a.rule.localeCompare(b.rule) || a.action.localeCompare(b.action),
        );
      return { competitionId, votes, reactions, alerts, alertsDropped: dropped };
    },

    async drain() {
      while (writing) await writing;
    },

    async close() {
      while (writing) await writing;
    },
  };
}
