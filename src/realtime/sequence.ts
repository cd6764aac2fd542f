/**
 * Per-topic sequence numbers kept in PostgreSQL (table "TopicSequence"). Taking the next number
 * locks the topic's row until the transaction ends, so work done after it in the same
 * transaction (e.g. recounting a tally) is ordered exactly like the numbers, on every instance.
 */
import type { Prisma } from '../generated/prisma/client.js';

type Tx = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw'>;

/** Creates the topic's row (seq 0) if missing; call in the transaction that creates the entity. */
export async function ensureTopic(tx: Tx, topic: string): Promise<void> {
  await tx.$executeRaw`INSERT INTO "TopicSequence" ("topic", "seq") VALUES (${topic}, 0) ON CONFLICT ("topic") DO NOTHING`;
}

/** Increments and returns the topic's sequence; holds the row lock until the transaction ends. */
export async function nextSeq(tx: Tx, topic: string): Promise<number> {
  const rows = await tx.$queryRaw<{ seq: number }[]>`
    INSERT INTO "TopicSequence" ("topic", "seq", "updatedAt") VALUES (${topic}, 1, ${new Date()})
    ON CONFLICT ("topic") DO UPDATE SET "seq" = "TopicSequence"."seq" + 1, "updatedAt" = EXCLUDED."updatedAt"
    RETURNING "seq"`;
  return Number(rows[0]!.seq);
}

/**
 * The topic's current sequence, waiting for any transaction that is producing the next one
 * (FOR SHARE conflicts with nextSeq's lock). State read after this in the same transaction is
 * at least as new as the state the returned seq was published with.
 */
export async function currentSeq(tx: Tx, topic: string): Promise<number> {
  const rows = await tx.$queryRaw<
    { seq: number }[]
  >`SELECT "seq" FROM "TopicSequence" WHERE "topic" = ${topic} FOR SHARE`;
  return rows[0] ? Number(rows[0].seq) : 0;
}
