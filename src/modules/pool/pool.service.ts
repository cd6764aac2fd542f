/**
 * The audience investment pool: signed-in users pledge virtual amounts to a session's
 * submissions. A pledge sets (not adds) the caller's amount on one submission (0 removes it); a
 * user's pledges in a session total at most the session's pledgeBudget.
 *
 * One transaction per pledge: the session row FOR SHARE (no pledge lands after END), a
 * transaction-scoped advisory lock on (session, user) so one user's concurrent pledges run one
 * at a time and can never overspend together, the write, then nextSeq and a recount of the
 * session's Pledge rows (the seq row lock orders recounts across instances, so a higher seq never
 * carries older totals). The snapshot is published after the commit.
 */
import type { PrismaClient, Prisma } from '../../generated/prisma/client.js';
import { SessionStatus } from '../../generated/prisma/enums.js';
import { badInput, notFound } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { currentSeq, nextSeq } from '../../realtime/sequence.js';
import { snapshotThenLive } from '../../realtime/stream.js';
import { ownSubmission } from '../offers/offers.errors.js';
import { sessionEnded } from '../sessions/sessions.errors.js';
import { budgetExceeded } from './pool.errors.js';
import { poolTopic, type PoolEntry, type PoolEvent, type PoolSnapshot } from './pool.events.js';
import { validatePledgeAmount } from './pool.rules.js';

export interface PledgeInput {
  sessionId: string;
  submissionId: string;
  amount: number;
}

export interface PledgeResult {
  sessionId: string;
  submissionId: string;
  /** The caller's pledge on this submission now. */
  amount: number;
  budget: number;
  /** What the caller has left to pledge in this session. */
  remaining: number;
  pool: PoolEvent;
}

export interface MyPledges {
  sessionId: string;
  budget: number;
  pledged: number;
  remaining: number;
  pledges: { submissionId: string; amount: number; updatedAt: Date }[];
}

type Db = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw'>;

/** Recount of the session's pledges: running order first (zeros included), then others by id. */
export async function readPool(db: Db, sessionId: string): Promise<PoolSnapshot> {
  const [session] = await db.$queryRaw<{ submissionIds: string[]; pledgeBudget: number }[]>`
    SELECT "submissionIds", "pledgeBudget" FROM "EventSession" WHERE "id" = ${sessionId}`;
  if (!session) throw notFound('EventSession', sessionId);
  const sums = await db.$queryRaw<PoolEntry[]>`
    SELECT "submissionId", SUM("amount")::float8 AS "amount", COUNT(*)::int AS "backers"
    FROM "Pledge" WHERE "sessionId" = ${sessionId} GROUP BY "submissionId" ORDER BY "submissionId"`;
  const [distinct] = await db.$queryRaw<{ backers: number }[]>`
    SELECT COUNT(DISTINCT "userId")::int AS "backers" FROM "Pledge" WHERE "sessionId" = ${sessionId}`;
  return buildPool(sessionId, session.pledgeBudget, session.submissionIds, sums, distinct?.backers ?? 0);
}

export function buildPool(
  sessionId: string,
  budgetPerBacker: number,
  runningOrder: readonly string[],
  sums: readonly PoolEntry[],
  backers: number,
): PoolSnapshot {
  const bySubmission = new Map(sums.map((s) => [s.submissionId, s]));
  const entries: PoolEntry[] = [];
  const seen = new Set<string>();
  for (const submissionId of runningOrder) {
    if (seen.has(submissionId)) continue;
    seen.add(submissionId);
    const sum = bySubmission.get(submissionId);
    entries.push({ submissionId, amount: Number(sum?.amount ?? 0), backers: Number(sum?.backers ?? 0) });
  }
  for (const sum of sums) {
    if (!seen.has(sum.submissionId))
      entries.push({ submissionId: sum.submissionId, amount: Number(sum.amount), backers: Number(sum.backers) });
  }
  return {
    sessionId,
    budgetPerBacker,
    totalAmount: entries.reduce((total, e) => total + e.amount, 0),
    backers,
    entries,
  };
}

export function createInvestmentPoolService(deps: { prisma: PrismaClient; bus: EventBus }) {
  const { prisma, bus } = deps;

  async function snapshot(sessionId: string): Promise<PoolEvent> {
    const topic = poolTopic(sessionId);
    return prisma.$transaction(async (tx) => {
      const seq = await currentSeq(tx, topic);
      const data = await readPool(tx, sessionId);
      return { topic, seq, publishedAt: new Date().toISOString(), data };
    });
  }

  return {
    snapshot,

    async pledge(viewer: Viewer, input: PledgeInput): Promise<PledgeResult> {
      const amount = validatePledgeAmount(input.amount);
      const { sessionId, submissionId } = input;
      const topic = poolTopic(sessionId);
      const result = await prisma.$transaction(async (tx) => {
        const [session] = await tx.$queryRaw<
          { status: SessionStatus; pledgeBudget: number; inRunningOrder: boolean }[]
        >`
          SELECT "status", "pledgeBudget", (${submissionId} = ANY("submissionIds")) AS "inRunningOrder"
          FROM "EventSession" WHERE "id" = ${sessionId} FOR SHARE`;
        if (!session) throw notFound('EventSession', sessionId);
        if (session.status === SessionStatus.ENDED) throw sessionEnded(sessionId);
        if (!session.inRunningOrder) {
          throw badInput(
            'input.submissionId',
            `Submission ${submissionId} is not in the running order of session ${sessionId}`,
          );
        }
        const submission = await tx.submission.findUnique({ where: { id: submissionId }, select: { founderId: true } });
        if (!submission) throw notFound('Submission', submissionId);
        if (submission.founderId === viewer.id) throw ownSubmission(submissionId);

        // One user's pledges in one session, one at a time, on every instance.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`pledge:${sessionId}`}), hashtext(${viewer.id}))`;
        const mine = await tx.pledge.findMany({
          where: { sessionId, userId: viewer.id },
          select: { submissionId: true, amount: true },
        });
        const current = mine.find((p) => p.submissionId === submissionId)?.amount ?? 0;
        const pledged = mine.reduce((sum, p) => sum + p.amount, 0);
        const budget = session.pledgeBudget;
        // Lowering a pledge is always allowed (even if the budget was lowered meanwhile).
        if (amount > current && pledged - current + amount > budget)
          throw budgetExceeded(sessionId, budget, budget - pledged);

        let event: PoolEvent | undefined;
        if (amount !== current) {
          const key = { sessionId_submissionId_userId: { sessionId, submissionId, userId: viewer.id } };
          if (amount === 0) await tx.pledge.delete({ where: key });
          else
            await tx.pledge.upsert({
              where: key,
              create: { sessionId, submissionId, userId: viewer.id, amount },
              update: { amount },
            });
          const seq = await nextSeq(tx, topic);
          event = { topic, seq, publishedAt: '', data: await readPool(tx, sessionId) };
        }
        return { budget, remaining: budget - (pledged - current + amount), event };
      });

      let pool = result.event;
      if (pool) {
        pool.publishedAt = new Date().toISOString();
        bus.publish('investmentPool', sessionId, pool);
      } else {
        pool = await snapshot(sessionId); // nothing changed: nothing to publish
      }
      return { sessionId, submissionId, amount, budget: result.budget, remaining: result.remaining, pool };
    },

    async mine(viewer: Viewer, sessionId: string): Promise<MyPledges> {
      const session = await prisma.eventSession.findUnique({
        where: { id: sessionId },
        select: { pledgeBudget: true },
      });
      if (!session) throw notFound('EventSession', sessionId);
      const pledges = await prisma.pledge.findMany({
        where: { sessionId, userId: viewer.id },
        select: { submissionId: true, amount: true, updatedAt: true },
        orderBy: { submissionId: 'asc' },
      });
      const pledged = pledges.reduce((sum, p) => sum + p.amount, 0);
      return { sessionId, budget: session.pledgeBudget, pledged, remaining: session.pledgeBudget - pledged, pledges };
    },

    /** The pool's totals now, then after every change (conflated: a slow watcher gets the latest). */
    async subscribe(sessionId: string): Promise<AsyncIterableIterator<PoolEvent>> {
      const session = await prisma.eventSession.findUnique({ where: { id: sessionId }, select: { id: true } });
      if (!session) throw notFound('EventSession', sessionId);
      return snapshotThenLive(bus.subscribe('investmentPool', sessionId, { conflate: true }), () =>
        snapshot(sessionId),
      );
    },
  };
}

export type InvestmentPoolService = ReturnType<typeof createInvestmentPoolService>;
