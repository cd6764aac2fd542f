/**
 * What voting publishes: `tally:<competitionId>`, a full TallyUpdate of the standings (conflated,
 * snapshot-first), and how an update takes its seq. Flushes (voting.publisher.ts) and status
 * changes (competitions) both sequence standings with sequenceStandings, in their own transaction,
 * and publish after the commit: a higher seq never carries older standings.
 */
import { createHash } from 'node:crypto';
import type { Prisma } from '../../generated/prisma/client.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';
import { foldTallyDeltas, readStandings, type TallySnapshot } from './voting.queries.js';

// The standings' shape is the read model's (voting.queries.ts), which builds them.
export type { TallySnapshot } from './voting.queries.js';

export type TallyEvent = RealtimeEvent<TallySnapshot>;

type Tx = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw'>;

/** What identifies "the same standings": momentum drifts with time and does not count. */
function standingsHash(snapshot: TallySnapshot): string {
  return createHash('sha1')
    .update(JSON.stringify([snapshot.status, snapshot.entries.map((e) => [e.submissionId, e.votes, e.score])]))
    .digest('base64');
}

/**
 * Reads the competition's standings and takes the next seq for them in `tx`, unless they equal
 * the last sequenced ones or (with `windowMs`) an update was sequenced less than windowMs ago.
 * The caller publishes a 'published' event after its commit. Locks the competition's
 * TopicSequence row: callers that lock the Competition row lock it first.
 */
export async function sequenceStandings(tx: Tx, competitionId: string, windowMs: number | null): Promise<FlushOutcome> {
  const topic = topicName('tally', competitionId);
  // The row lock orders flushes across instances: a higher seq never carries older counts.
  const [row] = await tx.$queryRaw<{ seq: number; updatedAt: Date; stateHash: string | null }[]>`
    SELECT "seq", "updatedAt", "stateHash" FROM "TopicSequence" WHERE "topic" = ${topic} FOR UPDATE`;
  if (!row) return { kind: 'missing' };
  const now = new Date();
  const sinceLast = now.getTime() - new Date(row.updatedAt).getTime();
  if (windowMs !== null && row.seq > 0 && sinceLast >= 0 && sinceLast < windowMs) {
    return { kind: 'window-taken', retryInMs: windowMs - sinceLast };
  }
  await foldTallyDeltas(tx, competitionId);
  const snapshot = await readStandings(tx, competitionId, now);
  if (!snapshot) return { kind: 'missing' };
  const hash = standingsHash(snapshot);
  // Unchanged: the event as last sequenced (its seq and time), for a caller that must publish it again.
  if (hash === row.stateHash)
    return {
      kind: 'unchanged',
      event: { topic, seq: row.seq, publishedAt: new Date(row.updatedAt).toISOString(), data: snapshot },
    };
  const seq = row.seq + 1;
  await tx.$executeRaw`
    UPDATE "TopicSequence" SET "seq" = ${seq}, "updatedAt" = ${now}, "stateHash" = ${hash} WHERE "topic" = ${topic}`;
  // publishedAt is the instant the window was taken and the standings read, the same clock
  // that spaces windows: consecutive updates are never less than windowMs apart.
  return { kind: 'published', event: { topic, seq, publishedAt: now.toISOString(), data: snapshot } };
}

export type FlushOutcome =
  | { kind: 'published'; event: TallyEvent }
  | { kind: 'unchanged'; event: TallyEvent }
  /** Another instance (or this one) published within the window; try again after `retryInMs`. */
  | { kind: 'window-taken'; retryInMs: number }
  | { kind: 'missing' };

declare module '../../realtime/topics.js' {
  interface TopicMap {
    tally: TallySnapshot;
  }
}
