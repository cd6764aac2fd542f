/**
 * The resume history of topics whose events have no table of their own (a session's reactions and
 * offer transitions, a conversation's read receipts, fraud alerts): table "EventLog", one row per
 * published event, `(topic, seq) -> data`.
 *
 * Why PostgreSQL: the row is written in the very transaction that takes the event's seq (nextSeq's
 * row lock), so "seq n is committed" and "event n is in the log" are the same fact, on every
 * instance, whatever happens to the publisher after its commit. A reconnecting client (or a
 * subscriber that saw seq n+1 arrive before n) reads the log and can never meet a silent gap.
 * Rows are stamped with the database clock after the seq lock was taken, so `createdAt` grows
 * with `seq` within a topic; rows older than the resume window read as gone (deterministic
 * RESYNC_REQUIRED whether or not the pruner has run) and the pruner deletes them.
 */
import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { TopicHistory } from './resume.js';
import type { RealtimeEvent } from './topics.js';

type Tx = Pick<Prisma.TransactionClient, '$executeRaw' | '$queryRaw'>;

/** The database's clock as a UTC `timestamp` (the column has no time zone, like Prisma's). */
const DB_NOW = Prisma.sql`(clock_timestamp() AT TIME ZONE 'UTC')`;

/**
 * Appends events to the log. Call inside the transaction that took their seqs (after nextSeq), so
 * they commit or roll back together. `publishedAt` is not stored: replayed events carry the row's
 * time instead.
 */
export async function appendToLog(tx: Tx, events: readonly RealtimeEvent<unknown>[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((e) => Prisma.sql`(${e.topic}, ${e.seq}::int, ${JSON.stringify(e.data)}::jsonb, ${DB_NOW})`);
  await tx.$executeRaw`INSERT INTO "EventLog" ("topic", "seq", "data", "createdAt") VALUES ${Prisma.join(rows)}`;
}

interface Row {
  seq: number;
  data: unknown;
  createdAt: Date;
}

/**
 * The queries on one topic's history in flight on this instance, shared by the streams that start
 * at the same time. When an instance dies its whole audience resumes on the others at once, with
 * the same cursor: 5,000 starts were 10,000 identical queries queued on a pool of 10, a fifth of
 * the survivor's CPU during the storm (RELIABILITY.md, "Reconnect storm").
 */
interface TopicReads {
  /** The `latest` query in flight, and the one the callers that came meanwhile share after it. */
  running?: Promise<number> | undefined;
  queued?: Promise<number> | undefined;
  /** `read` queries in flight, by their arguments. */
  pages: Map<string, Promise<Row[]>>;
}

const inFlight = new WeakMap<object, Map<string, TopicReads>>();

function readsOf(db: object, topic: string): { reads: TopicReads; settle(): void } {
  let topics = inFlight.get(db);
  if (!topics) inFlight.set(db, (topics = new Map<string, TopicReads>()));
  let reads = topics.get(topic);
  if (!reads) topics.set(topic, (reads = { pages: new Map<string, Promise<Row[]>>() }));
  const own = reads;
  return {
    reads: own,
    settle() {
      if (!own.running && !own.queued && own.pages.size === 0 && topics.get(topic) === own) topics.delete(topic);
    },
  };
}

const ignore = (): void => undefined;

/**
 * A topic's history in the log: events with seq in (afterSeq, upTo], still within the window.
 * `latest` is the topic's current seq (TopicSequence, waiting for a producer that holds the next).
 *
 * Concurrent calls share queries. A `read` joins an identical one in flight: seqs up to `upTo`
 * are committed and never change, and a row that leaves the window meanwhile was within it when
 * the caller asked. A `latest` never takes a value read before it was called (it must see every
 * seq committed before its subscription went live, resume.ts): callers that come while one query
 * is in flight share the next one, which starts when that one is done.
 */
export function eventLogHistory<T>(db: PrismaClient, topic: string, windowSeconds: number): TopicHistory<T> {
  return {
    async read(afterSeq, upTo, limit) {
      const { reads, settle } = readsOf(db, topic);
      const key = `${afterSeq}:${upTo}:${limit}`;
      let query = reads.pages.get(key);
      if (!query) {
        // A real promise: a Prisma query runs when first awaited, and this one is awaited by many.
        query = Promise.resolve(db.$queryRaw<Row[]>`
          SELECT "seq", "data", "createdAt" FROM "EventLog"
          WHERE "topic" = ${topic} AND "seq" > ${afterSeq}::int AND "seq" <= ${upTo}::int
            AND "createdAt" >= ${DB_NOW} - make_interval(secs => ${windowSeconds}::int)
          ORDER BY "seq" ASC
          LIMIT ${limit}::int`);
        reads.pages.set(key, query);
        void query.then(ignore, ignore).finally(() => {
          reads.pages.delete(key);
          settle();
        });
      }
      const rows = await query;
      return rows.map((row) => ({
        topic,
        seq: Number(row.seq),
        publishedAt: row.createdAt.toISOString(),
        data: row.data as T,
      }));
    },
    latest() {
      const { reads, settle } = readsOf(db, topic);
      const start = (): Promise<number> => {
        const query = latestSeq(db, topic);
        reads.running = query;
        void query.then(ignore, ignore).finally(() => {
          if (reads.running === query) reads.running = undefined;
          settle();
        });
        return query;
      };
      if (!reads.running) return start();
      reads.queued ??= reads.running.then(ignore, ignore).then(() => {
        reads.queued = undefined;
        return start();
      });
      return reads.queued;
    },
  };
}

/**
 * The topic's latest committed seq. A plain read is enough for resuming: a transaction's seq and
 * its log row become visible together, and an event committed after this read is published after
 * it, to a subscription that is already live.
 */
export async function latestSeq(db: Pick<PrismaClient, '$queryRaw'>, topic: string): Promise<number> {
  const rows = await db.$queryRaw<{ seq: number }[]>`SELECT "seq" FROM "TopicSequence" WHERE "topic" = ${topic}`;
  return rows[0] ? Number(rows[0].seq) : 0;
}

export interface HistoryPruner {
  /** Deletes what is past the window now (tests, tooling); resolves with the rows deleted. */
  pruneNow(): Promise<number>;
  close(): Promise<void>;
}

const PRUNE_BATCH = 5_000;

/**
 * Deletes log rows older than the window (plus a margin, so a reader at the window's edge is not
 * raced), in batches, every `intervalMs` with jitter. Every instance runs one; they may overlap
 * harmlessly (a row is deleted once, the others find nothing).
 */
export function createHistoryPruner(deps: {
  prisma: PrismaClient;
  windowSeconds: number;
  intervalMs?: number;
  onError: (error: unknown) => void;
}): HistoryPruner {
  const { prisma, windowSeconds, onError } = deps;
  const intervalMs = deps.intervalMs ?? Math.min(60_000, Math.max(1_000, (windowSeconds * 1000) / 4));
  const keepSeconds = windowSeconds + Math.max(5, Math.ceil(windowSeconds / 10));
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let closed = false;

  async function prune(): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await prisma.$executeRaw`
        DELETE FROM "EventLog" WHERE ("topic", "seq") IN (
          SELECT "topic", "seq" FROM "EventLog"
          WHERE "createdAt" < ${DB_NOW} - make_interval(secs => ${keepSeconds}::int)
          LIMIT ${PRUNE_BATCH}::int)`;
      total += deleted;
      if (deleted < PRUNE_BATCH || closed) return total;
    }
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(
      () => {
        running = prune().catch((error: unknown) => {
          onError(error);
          return 0;
        });
        void running.finally(() => {
          running = undefined;
          schedule();
        });
      },
      intervalMs * (0.75 + Math.random() / 2),
    );
    timer.unref();
  }
  schedule();

  return {
    pruneNow: () => prune(),
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
