/**
 * Event-day sessions: a competition's running order with a server-authoritative countdown.
 *
 * A transition reads the row, computes the next state with the pure machine (sessions.rules.ts) and
 * writes it with ONE compare-and-set UPDATE (WHERE every mutable column still equals what was
 * read), taking the session topic's next seq in the same transaction and publishing after the
 * commit. Two admins pressing NEXT at once therefore never lose or double an update: if both read
 * the same state, exactly one write matches and the other gets CONFLICT (reason
 * CONCURRENT_UPDATE); a press that arrives after the first committed applies to the new state.
 * Clients that want "apply only to what I saw" send `expectedSeq` (CONFLICT reason STALE_SEQ).
 *
 * Competition side effects go through the competitions service and happen *before* the session
 * write: START opens a DRAFT competition's voting (so voting is open by the time anyone sees LIVE);
 * EMERGENCY_STOP closes an OPEN competition's voting first, then ends the session, retrying the
 * session write on concurrent changes; it is accepted in every status, so it never fails for
 * being pressed twice.
 *
 * Time is the JS clock (`now`, injectable); timestamps are stored as JS Dates in timestamp(3).
 */
import type { EventSession, PrismaClient } from '../../generated/prisma/client.js';
import { CompetitionStatus, SessionStatus } from '../../generated/prisma/enums.js';
import { AppError, ErrorCode, badInput, notFound } from '../../errors.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { ensureTopic, nextSeq } from '../../realtime/sequence.js';
import { snapshotThenLive } from '../../realtime/stream.js';
import type { CompetitionsService } from '../competitions/competitions.service.js';
import {
  PRESENTATION_SECONDS_MAX,
  applyAction,
  validateSeconds,
  type SessionAction,
  type TimerState,
} from './sessions.rules.js';
import { competitionClosed, concurrentUpdate, staleSeq } from './sessions.errors.js';
import {
  readSnapshot,
  readState,
  sessionTopic,
  toState,
  type SessionEvent,
  type SessionView,
} from './sessions.events.js';
import { createStatusCache, type StatusEntry } from './sessions.cache.js';
import type { DomainEvents, OutboxRecord } from '../../domain-events.js';

export interface CreateSessionInput {
  competitionId: string;
  /** The running order. */
  submissionIds: readonly string[];
  presentationSeconds: number;
}

export interface ControlSessionInput {
  sessionId: string;
  action: SessionAction;
  seconds?: number | null;
  /** Apply only if the session is still at this seq (the last one the client saw). */
  expectedSeq?: number | null;
}

export const RUNNING_ORDER_MAX = 500;
/** EMERGENCY_STOP re-reads and retries its session write this many times under concurrent changes. */
const EMERGENCY_ATTEMPTS = 10;

const ms = (date: Date | null): number | null => (date ? date.getTime() : null);
const date = (epochMs: number | null): Date | null => (epochMs === null ? null : new Date(epochMs));

function timerOf(row: EventSession): TimerState {
  return {
    status: row.status,
    currentIndex: row.currentIndex,
    timerEndsAt: ms(row.timerEndsAt),
    remainingMs: row.remainingMs,
    startedAt: ms(row.startedAt),
    endedAt: ms(row.endedAt),
  };
}

export function createSessionsService(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  /**
   * Where committed session states are announced ('session.changed': the activity feed):
   * recorded in the write's transaction (the outbox), delivered after the commit.
   */
  events?: Pick<DomainEvents, 'record' | 'committed'>;
  competitions: Pick<CompetitionsService, 'byId' | 'open' | 'close'>;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
  /** Staleness bound of `status()` for changes made on other instances. */
  statusMaxAgeMs?: number;
}) {
  const { prisma, bus, competitions } = deps;
  const now = deps.now ?? Date.now;

  const statuses = createStatusCache({
    now,
    maxAgeMs: deps.statusMaxAgeMs ?? 1_000,
    maxEntries: 10_000,
    async load(sessionId): Promise<StatusEntry> {
      // One statement, one snapshot: the status and the seq it was published with.
      const [row] = await prisma.$queryRaw<{ status: SessionStatus; seq: number }[]>`
        SELECT s."status"::text AS "status", COALESCE(t."seq", 0)::int AS "seq"
        FROM "EventSession" s LEFT JOIN "TopicSequence" t ON t."topic" = ${sessionTopic(sessionId)}
        WHERE s."id" = ${sessionId}`;
      return row ? { status: row.status, seq: Number(row.seq) } : { status: null, seq: -1 };
    },
  });

  const view = (event: SessionEvent): SessionView => ({ event, now: now() });

  async function snapshot(sessionId: string): Promise<SessionEvent> {
    const event = await readSnapshot(prisma, sessionId, now());
    if (!event) throw notFound('Session', sessionId);
    return event;
  }

  async function competitionOf(competitionId: string) {
    const competition = await competitions.byId(competitionId);
    if (!competition) throw notFound('Competition', competitionId);
    return competition;
  }

  const isConflict = (error: unknown): boolean => error instanceof AppError && error.code === ErrorCode.CONFLICT;

  /** START: voting must be (or become) open; a CLOSED competition's sessions cannot start. */
  async function openVoting(competitionId: string): Promise<void> {
    let competition = await competitionOf(competitionId);
    if (competition.status === CompetitionStatus.DRAFT) {
      try {
        await competitions.open(competitionId);
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
        competition = await competitionOf(competitionId); // somebody else moved it first
      }
    }
    if (competition.status === CompetitionStatus.CLOSED) throw competitionClosed(competitionId, 'START a session');
  }

  /** EMERGENCY_STOP: an OPEN competition is closed; DRAFT and CLOSED ones accept no votes already. */
  async function closeVoting(competitionId: string): Promise<void> {
    const competition = await competitionOf(competitionId);
    if (competition.status !== CompetitionStatus.OPEN) return;
    try {
      await competitions.close(competitionId);
    } catch (error) {
      if (!isConflict(error)) throw error; // closed concurrently: OPEN can only become CLOSED
    }
  }

  /** The compare-and-set write of one transition; null when the row no longer matches `row`. */
  async function write(
    row: EventSession,
    next: TimerState,
    action: SessionAction,
    expectedSeq: number | null,
  ): Promise<{ event: SessionEvent; outboxed: OutboxRecord | undefined } | null> {
    const topic = sessionTopic(row.id);
    return prisma.$transaction(async (tx) => {
      const { count } = await tx.eventSession.updateMany({
        where: {
          id: row.id,
          status: row.status,
          currentIndex: row.currentIndex,
          timerEndsAt: row.timerEndsAt,
          remainingMs: row.remainingMs,
        },
        data: {
          status: next.status,
          currentIndex: next.currentIndex,
          timerEndsAt: date(next.timerEndsAt),
          remainingMs: next.remainingMs,
          startedAt: date(next.startedAt),
          endedAt: date(next.endedAt),
        },
      });
      if (count === 0) return null;
      // Taken after the row write, in the same transaction: the row lock orders writers, so seq
      // order is commit order and a higher seq never carries older state.
      const seq = await nextSeq(tx, topic);
      if (expectedSeq !== null && seq !== expectedSeq + 1)
        throw staleSeq(row.id, action, row.status, expectedSeq, seq - 1);
      const updated = await tx.eventSession.findUniqueOrThrow({ where: { id: row.id } });
      const event: SessionEvent = { topic, seq, publishedAt: '', data: await readState(tx, updated) };
      const outboxed = await deps.events?.record(tx, 'session.changed', event);
      return { event, outboxed };
    });
  }

  async function currentSeqOf(sessionId: string): Promise<number> {
    const row = await prisma.topicSequence.findUnique({
      where: { topic: sessionTopic(sessionId) },
      select: { seq: true },
    });
    return row?.seq ?? 0;
  }

  return {
    view,

    async create(input: CreateSessionInput): Promise<SessionView> {
      const { competitionId, submissionIds, presentationSeconds } = input;
      if (
        !Number.isInteger(presentationSeconds) ||
        presentationSeconds < 1 ||
        presentationSeconds > PRESENTATION_SECONDS_MAX
      ) {
        throw badInput(
          'input.presentationSeconds',
          `presentationSeconds must be 1..${PRESENTATION_SECONDS_MAX}, got ${presentationSeconds}`,
        );
      }
      if (submissionIds.length === 0)
        throw badInput('input.submissionIds', 'submissionIds must list at least one submission');
      if (submissionIds.length > RUNNING_ORDER_MAX) {
        throw badInput('input.submissionIds', `submissionIds may list at most ${RUNNING_ORDER_MAX} submissions`);
      }
      const seen = new Set<string>();
      submissionIds.forEach((id, index) => {
        if (seen.has(id))
          throw badInput('input.submissionIds', `submissionIds[${index}]: ${id} appears twice in the running order`);
        seen.add(id);
      });

      const competition = await competitionOf(competitionId);
      if (competition.status === CompetitionStatus.CLOSED) throw competitionClosed(competitionId, 'create a session');
      const members = await prisma.submission.findMany({
        where: { id: { in: [...submissionIds] }, competitionId },
        select: { id: true },
      });
      const memberIds = new Set(members.map((m) => m.id));
      submissionIds.forEach((id, index) => {
        if (!memberIds.has(id)) {
          throw badInput(
            'input.submissionIds',
            `submissionIds[${index}]: submission ${id} is not part of competition ${competitionId}`,
          );
        }
      });

      const event = await prisma.$transaction(async (tx) => {
        const row = await tx.eventSession.create({
          data: { competitionId, submissionIds: [...submissionIds], presentationSeconds },
        });
        await ensureTopic(tx, sessionTopic(row.id));
        return {
          topic: sessionTopic(row.id),
          seq: 0,
          publishedAt: new Date(now()).toISOString(),
          data: await readState(tx, row),
        };
      });
      statuses.put(event.data.id, { status: event.data.status, seq: event.seq });
      return view(event);
    },

    async control(input: ControlSessionInput): Promise<SessionView> {
      const { sessionId, action } = input;
      const seconds = input.seconds ?? null;
      const expectedSeq = input.expectedSeq ?? null;
      validateSeconds(action, seconds);
      if (expectedSeq !== null && (!Number.isInteger(expectedSeq) || expectedSeq < 0)) {
        throw badInput('input.expectedSeq', 'expectedSeq must be a non-negative seq of this session');
      }

      for (let attempt = 1; ; attempt += 1) {
        const row = await prisma.eventSession.findUnique({ where: { id: sessionId } });
        if (!row) throw notFound('Session', sessionId);
        const before = timerOf(row);
        const next = applyAction(
          { id: row.id, presentationSeconds: row.presentationSeconds, length: row.submissionIds.length },
          before,
          action,
          now(),
          seconds,
        );
        if (expectedSeq !== null) {
          const seq = await currentSeqOf(sessionId);
          if (seq !== expectedSeq) throw staleSeq(sessionId, action, row.status, expectedSeq, seq);
        }

        if (action === 'START') await openVoting(row.competitionId);
        if (action === 'EMERGENCY_STOP') await closeVoting(row.competitionId);
        if (next === before) return view(await snapshot(sessionId)); // EMERGENCY_STOP on an ENDED session

        const written = await write(row, next, action, expectedSeq);
        if (!written) {
          if (action === 'EMERGENCY_STOP' && attempt < EMERGENCY_ATTEMPTS) continue;
          const current = await prisma.eventSession.findUnique({ where: { id: sessionId }, select: { status: true } });
          throw concurrentUpdate(sessionId, action, current?.status ?? row.status);
        }
        const { event, outboxed } = written;
        event.publishedAt = new Date(now()).toISOString();
        bus.publish('session', sessionId, event);
        if (outboxed) deps.events?.committed(outboxed);
        statuses.put(sessionId, { status: event.data.status, seq: event.seq });
        return view(event);
      }
    },

    /** The session now, or null. */
    async get(sessionId: string): Promise<SessionView | null> {
      const event = await readSnapshot(prisma, sessionId, now());
      return event && view(event);
    },

    /** A competition's sessions, oldest first. */
    async list(competitionId: string): Promise<SessionView[]> {
      await competitionOf(competitionId);
      const ids = await prisma.eventSession.findMany({ where: { competitionId }, select: { id: true } });
      const topics = ids.map((s) => sessionTopic(s.id));
      // Seqs first, then rows: every state is at least as new as the seq it is listed with.
      const seqs = new Map(
        (await prisma.topicSequence.findMany({ where: { topic: { in: topics } } })).map((t) => [t.topic, t.seq]),
      );
      const rows = await prisma.eventSession.findMany({
        where: { competitionId },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      const submissions = await prisma.submission.findMany({ where: { competitionId } });
      const at = now();
      return rows.map((row) => ({
        event: {
          topic: sessionTopic(row.id),
          seq: seqs.get(sessionTopic(row.id)) ?? 0,
          publishedAt: new Date(at).toISOString(),
          data: toState(row, submissions),
        },
        now: at,
      }));
    },

    /**
     * `sessionUpdated`: the current state first, then every later state (conflated: a subscriber
     * that falls behind skips to the newest state, never an older one).
     */
    async watch(sessionId: string): Promise<AsyncIterableIterator<SessionEvent>> {
      const exists = await prisma.eventSession.findUnique({ where: { id: sessionId }, select: { id: true } });
      if (!exists) throw notFound('Session', sessionId);
      return snapshotThenLive(bus.subscribe('session', sessionId, { conflate: true }), () => snapshot(sessionId));
    },

    /**
     * The session's status for hot paths in other modules (null: no such session). Cached per
     * instance: changes made on this instance are seen at once, changes made on another instance
     * within `statusMaxAgeMs` (default 1 s). See sessions.cache.ts.
     */
    status: (sessionId: string): Promise<SessionStatus | null> => statuses.get(sessionId),
  };
}

export type SessionsService = ReturnType<typeof createSessionsService>;
