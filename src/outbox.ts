/**
 * The transactional outbox: how a durable domain event (src/domain-events.ts) survives a crash
 * between the commit it announces and the reactions it causes (a notification, an activity entry).
 *
 * - `record(tx, name, payload)`: one INSERT into "OutboxEvent" inside the emitter's transaction, so
 *   the event exists exactly when the state that causes it does (a rollback leaves no event).
 * - `committed(records)`, after the commit: the fast path. This instance claims the rows at once and
 *   dispatches them to their handlers.
 * - The sweep, at start and every `sweepMs`: any instance claims rows older than `graceMs` whose claim
 *   is free, oldest first: rows of a crashed instance, rows whose handlers failed (retried with a
 *   growing backoff), rows whose fast-path claim failed. The grace leaves a fresh row to the
 *   instance that committed it.
 *
 * Claims are one `UPDATE … WHERE "id" IN (SELECT … FOR UPDATE SKIP LOCKED)` that sets claimedUntil =
 * now + `leaseMs`: of several relays sharing the database exactly one takes each row, and no
 * transaction stays open while handlers run (embedded PGlite serves one transaction at a time). A
 * claim of a dead relay expires after the lease and the row is swept again.
 *
 * Once every handler resolved, the row gets processedAt; processed rows are pruned after
 * `retentionMs`. Exactly once: a row is dispatched a second time only if its relay died (or its
 * lease ran out) after a handler wrote and before processedAt; handlers are idempotent for that
 * replay: notifications by their dedupKey (derived from the event), activity entries by an
 * OutboxReceipt written in their own transaction (`delivery.once(tx, handler)`).
 *
 * Order: claims are made one at a time per instance and handlers are called in claim order, which
 * is commit order for the fast path (the order `committed` was called) and createdAt for sweeps.
 */
import { randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from './generated/prisma/client.js';

/** A recorded event: what `committed` needs after the commit. */
export interface OutboxRecord {
  readonly id: string;
  readonly name: string;
}

/** What a handler of a durable event is given besides the payload. */
export interface OutboxDelivery {
  /** The outbox event's id (the same on a replay). */
  readonly id: string;
  /**
   * Inside the handler's own write transaction: true the first time `handler` applies this event,
   * false when it already did (a replay after a crash): then it must write nothing.
   */
  once(tx: Prisma.TransactionClient, handler: string): Promise<boolean>;
}

export interface OutboxOptions {
  prisma: PrismaClient;
  /**
   * Runs every handler of the event; must call them synchronously (so claim order is handler
   * order) and resolve once all of them did their work, reject if any failed (the row is retried).
   */
  dispatch: (name: string, payload: unknown, delivery: OutboxDelivery) => Promise<void>;
  /** OUTBOX_SWEEP_MS: how often this instance looks for rows nobody delivered; 0 sweeps only at start. */
  sweepMs?: number;
  /** How long a claim keeps other relays away from a row: longer than any handler runs. */
  leaseMs?: number;
  /** How old a row must be before a sweep takes it (the committing instance's fast path goes first). */
  graceMs?: number;
  /** Rows per claim. */
  batch?: number;
  /** How long processed rows are kept (inspection) before they are pruned. */
  retentionMs?: number;
  now?: () => Date;
  onError: (error: unknown, details: Record<string, unknown>) => void;
  /**
   * Test-only fault injection, called for each record before the fast path (src/app.ts: SIGKILL of
   * the process when OUTBOX_TEST_CRASH_AFTER_COMMIT names the event and NODE_ENV=test).
   */
  afterCommit?: (record: OutboxRecord) => void;
}

export interface Outbox {
  record(tx: Prisma.TransactionClient, name: string, payload: unknown): Promise<OutboxRecord>;
  /** After the commit of the transaction that recorded them: deliver now, on this instance. */
  committed(records: readonly OutboxRecord[]): void;
  /** First sweep now, then every sweepMs. */
  start(): void;
  /** Claims and dispatches every deliverable row now (tests, and the timer). Resolves when they are handled. */
  sweep(): Promise<void>;
  /** Resolves when what was handed to `committed` so far is claimed and handled (tests). */
  idle(): Promise<void>;
  /** Stops claiming; resolves when the deliveries in flight are done. Unclaimed rows wait for a sweep. */
  close(): Promise<void>;
}

interface Row {
  id: string;
  name: string;
  payload: unknown;
  attempts: number;
}

const PRUNE_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 300_000;

export function createOutbox(options: OutboxOptions): Outbox {
  const { prisma, dispatch, onError } = options;
  const sweepMs = options.sweepMs ?? 1_000;
  const leaseMs = options.leaseMs ?? 60_000;
  const graceMs = options.graceMs ?? 2_000;
  const batch = options.batch ?? 100;
  const retentionMs = options.retentionMs ?? 3_600_000;
  const clock = options.now ?? (() => new Date());

  const pending: string[] = [];
  /** Sweeps asked for, with what resolves each once its rows are handled. */
  let sweepWaiters: (() => void)[] = [];
  /** The deliveries of the sweep round under way (a round claims until a batch comes back short). */
  let sweepRound: Promise<void>[] = [];
  let sweepWanted = false;
  let pumping: Promise<void> | undefined;
  const inFlight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let lastPrune = 0;
  let closed = false;

  const later = (ms: number) => new Date(clock().getTime() + ms);

  async function claim(which: Prisma.Sql): Promise<Row[]> {
    const now = clock();
    const rows = await prisma.$queryRaw<Row[]>`
      UPDATE "OutboxEvent" o SET "claimedUntil" = ${new Date(now.getTime() + leaseMs)}, "attempts" = o."attempts" + 1
      WHERE o."id" IN (
        SELECT "id" FROM "OutboxEvent"
        WHERE "processedAt" IS NULL AND ("claimedUntil" IS NULL OR "claimedUntil" <= ${now}) AND ${which}
        ORDER BY "createdAt", "id" LIMIT ${batch}
        FOR UPDATE SKIP LOCKED)
      RETURNING o."id", o."name", o."payload", o."attempts"`;
    return rows;
  }

  function track(promise: Promise<void>): void {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  }

  /** Calls the handlers now (synchronously, inside dispatch); settles the row when they are done. */
  async function handle(row: Row): Promise<void> {
    const delivery: OutboxDelivery = {
      id: row.id,
      async once(tx, handler) {
        const inserted = await tx.$queryRaw<unknown[]>`
          INSERT INTO "OutboxReceipt" ("eventId", "handler") VALUES (${row.id}, ${handler})
          ON CONFLICT DO NOTHING RETURNING 1`;
        return inserted.length > 0;
      },
    };
    try {
      await dispatch(row.name, row.payload, delivery);
    } catch (error) {
      onError(error, { event: row.name, id: row.id, attempts: row.attempts });
      const backoff = Math.min(1_000 * 2 ** Math.max(0, row.attempts - 1), MAX_BACKOFF_MS);
      await prisma.$executeRaw`UPDATE "OutboxEvent" SET "claimedUntil" = ${later(backoff)} WHERE "id" = ${row.id}`.catch(
        (e: unknown) => onError(e, { event: row.name, id: row.id, what: 'retry' }),
      );
      return;
    }
    // A failure here leaves the claim to expire: the row is dispatched again, to idempotent handlers.
    await prisma.$executeRaw`UPDATE "OutboxEvent" SET "processedAt" = ${clock()}, "claimedUntil" = NULL WHERE "id" = ${row.id}`.catch(
      (error: unknown) => onError(error, { event: row.name, id: row.id, what: 'processed' }),
    );
  }

  /** One claim at a time on this instance: handlers are called in claim order. */
  async function pumpLoop(): Promise<void> {
    while (!closed) {
      if (pending.length > 0) {
        const ids = pending.splice(0, batch);
        const rows = await claim(Prisma.sql`"id" = ANY(${ids}::text[])`).catch((error: unknown) => {
          onError(error, { what: 'claim' }); // left to a sweep
          return [];
        });
        const position = new Map(ids.map((id, i) => [id, i]));
        rows.sort((a, b) => position.get(a.id)! - position.get(b.id)!);
        for (const row of rows) track(handle(row));
      } else if (sweepWanted) {
        sweepWanted = false;
        let rows: Row[] = [];
        try {
          rows = await claim(Prisma.sql`"createdAt" <= ${new Date(clock().getTime() - graceMs)}`);
        } catch (error) {
          onError(error, { what: 'sweep' });
        }
        for (const row of rows) {
          const promise = handle(row);
          track(promise);
          sweepRound.push(promise);
        }
        if (rows.length === batch)
          sweepWanted = true; // more to take: same round
        else {
          const [waiters, round] = [sweepWaiters, sweepRound];
          [sweepWaiters, sweepRound] = [[], []];
          void Promise.allSettled(round).then(() => waiters.forEach((resolve) => resolve()));
        }
      } else return;
    }
  }

  function pump(): void {
    if (pumping || closed) return;
    pumping = pumpLoop().finally(() => {
      pumping = undefined;
      if (pending.length > 0 || sweepWanted) pump();
    });
  }

  async function prune(): Promise<void> {
    lastPrune = Date.now();
    await prisma.$executeRaw`DELETE FROM "OutboxEvent" WHERE "processedAt" < ${new Date(clock().getTime() - retentionMs)}`;
  }

  function sweep(): Promise<void> {
    if (closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => sweepWaiters.push(resolve));
    sweepWanted = true;
    pump();
    if (Date.now() - lastPrune >= PRUNE_EVERY_MS)
      track(prune().catch((error: unknown) => onError(error, { what: 'prune' })));
    return done;
  }

  async function settle(): Promise<void> {
    while (pumping || inFlight.size > 0) await Promise.allSettled([pumping, ...inFlight]);
  }

  function schedule(): void {
    if (closed || sweepMs <= 0) return;
    timer = setTimeout(() => void sweep().finally(schedule), sweepMs);
    timer.unref();
  }

  return {
    async record(tx, name, payload) {
      const id = randomUUID();
      await tx.$executeRaw`
        INSERT INTO "OutboxEvent" ("id", "name", "payload", "createdAt")
        VALUES (${id}, ${name}, ${JSON.stringify(payload)}::jsonb, ${clock()})`;
      return { id, name };
    },

    committed(records) {
      for (const record of records) {
        options.afterCommit?.(record);
        pending.push(record.id);
      }
      pump();
    },

    start() {
      void sweep().finally(schedule);
    },

    sweep,

    idle: settle,

    async close() {
      closed = true;
      clearTimeout(timer);
      await settle();
      for (const resolve of sweepWaiters.splice(0)) resolve();
    },
  };
}
