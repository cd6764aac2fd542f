/**
 * What the sessions module publishes on topic `session:<sessionId>`: after every committed
 * transition, the session's full state (a snapshot, so subscribers conflate) with the seq taken
 * in the transition's transaction. Plain JSON: times are ISO strings, so events cross Redis as-is.
 */
import type { EventSession, Prisma, Submission } from '../../generated/prisma/client.js';
import type { SessionStatus } from '../../generated/prisma/enums.js';
import { currentSeq } from '../../realtime/sequence.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

export interface SessionSubmission {
  id: string;
  competitionId: string;
  title: string;
  founderId: string | null;
  createdAt: string;
}

export interface SessionState {
  id: string;
  competitionId: string;
  status: SessionStatus;
  /** The running order, by id. */
  submissionIds: string[];
  /** The running order's submissions (carried so no subscriber loads them per event). */
  submissions: SessionSubmission[];
  currentIndex: number;
  presentationSeconds: number;
  timerEndsAt: string | null;
  remainingMs: number | null;
  startedAt: string | null;
  endedAt: string | null;
}

export type SessionEvent = RealtimeEvent<SessionState>;

/** A session event as seen at one instant of the serving instance's clock (for remainingSeconds/serverTime). */
export interface SessionView {
  event: SessionEvent;
  /** Epoch ms. */
  now: number;
}

type Tx = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw' | 'eventSession' | 'submission'>;

export const sessionTopic = (sessionId: string): string => topicName('session', sessionId);

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

export function toState(row: EventSession, submissions: readonly Submission[]): SessionState {
  const byId = new Map(submissions.map((s) => [s.id, s]));
  return {
    id: row.id,
    competitionId: row.competitionId,
    status: row.status,
    submissionIds: [...row.submissionIds],
    submissions: row.submissionIds.flatMap((id) => {
      const s = byId.get(id);
      return s
        ? [
            {
              id: s.id,
              competitionId: s.competitionId,
              title: s.title,
              founderId: s.founderId,
              createdAt: s.createdAt.toISOString(),
            },
          ]
        : [];
    }),
    currentIndex: row.currentIndex,
    presentationSeconds: row.presentationSeconds,
    timerEndsAt: iso(row.timerEndsAt),
    remainingMs: row.remainingMs,
    startedAt: iso(row.startedAt),
    endedAt: iso(row.endedAt),
  };
}

export async function readState(tx: Tx, row: EventSession): Promise<SessionState> {
  const submissions = await tx.submission.findMany({ where: { id: { in: row.submissionIds } } });
  return toState(row, submissions);
}

/**
 * The session's current state with the seq of the latest published state: `currentSeq` waits
 * for a transition that holds the next seq, so the state read after it is exactly that seq's.
 */
export async function readSnapshot(
  prisma: { $transaction<R>(fn: (tx: Prisma.TransactionClient) => Promise<R>): Promise<R> },
  sessionId: string,
  now: number,
): Promise<SessionEvent | null> {
  const topic = sessionTopic(sessionId);
  return prisma.$transaction(async (tx) => {
    const seq = await currentSeq(tx, topic);
    const row = await tx.eventSession.findUnique({ where: { id: sessionId } });
    if (!row) return null;
    return { topic, seq, publishedAt: new Date(now).toISOString(), data: await readState(tx, row) };
  });
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    session: SessionState;
  }
}
