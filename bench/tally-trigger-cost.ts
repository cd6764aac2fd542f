/**
 * What keeping the running tally totals costs the vote writer: the same vote batches written with
 * BallotEntry's tally triggers on and off (ALTER TABLE ... DISABLE TRIGGER USER), alternating, in
 * one database. Only the database side of castVote (the writer's statements through Prisma), so
 * the figure is not drowned in HTTP, auth and GraphQL work; bench:castvote measures the whole.
 *
 *   npx tsx bench/tally-trigger-cost.ts [--backend postgres,pglite] [--rounds 6] [--votes 4000]
 *
 * SIMPLE votes take the one-statement path; RANKED ballots (4 submissions) the transactional one,
 * replacing the ballot of a voter who already voted every other round. 64 callers each send their
 * next vote when the previous one is answered (as bench:castvote's 64 connections).
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import type { Database } from '../src/infra/database.js';
import { createVoteWriter } from '../src/modules/voting/voting.writer.js';
import { backendsOf, withDatabase } from './lib/database.js';

const POOL_SIZE = 10;
const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'postgres,pglite' },
    rounds: { type: 'string', default: '6' },
    votes: { type: 'string', default: '4000' },
  },
});
const rounds = Number(values.rounds);
const votesPerRun = Number(values.votes);
const CLIENTS = 64;

async function competition(db: Database, method: 'SIMPLE' | 'RANKED'): Promise<{ id: string; submissions: string[] }> {
  const id = randomUUID();
  await db.prisma.$executeRawUnsafe(
    `INSERT INTO "Competition" ("id", "title", "votingMethod", "status", "updatedAt") VALUES ($1, $2, $3::"VotingMethod", 'OPEN', now())`,
    id,
    method,
    method,
  );
  const submissions = Array.from({ length: 4 }, () => randomUUID());
  for (const [i, s] of submissions.entries()) {
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO "Submission" ("id", "competitionId", "title") VALUES ($1, $2, $3)`,
      s,
      id,
      `S${i}`,
    );
  }
  return { id, submissions };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(backend: string, db: Database): Promise<void> {
  const voters = (rounds + 1) * 4 * votesPerRun; // SIMPLE: a new voter per vote; RANKED: new voters every other run
  await db.prisma.$executeRawUnsafe(
    `INSERT INTO "User" ("id", "name", "updatedAt") SELECT 'bench-' || g, 'voter', now() FROM generate_series(1, $1::int) g`,
    voters,
  );
  // As the app: PGlite has one session, PostgreSQL min(4, pool / 2) batches at once.
  const writer = createVoteWriter({
    prisma: db.prisma,
    concurrency: backend === 'pglite' ? 1 : 4,
    onCommitted: () => undefined,
  });
  const results: Record<string, Record<'on' | 'off', number[]>> = {
    SIMPLE: { on: [], off: [] },
    RANKED: { on: [], off: [] },
  };
  // Votes whose batch failed (e.g. a batch transaction past Prisma's 5 s timeout on a busy machine):
  // counted and reported rather than ending the run; the rates count only written votes.
  const failed: Record<string, Record<'on' | 'off', number>> = { SIMPLE: { on: 0, off: 0 }, RANKED: { on: 0, off: 0 } };
  let nextVoter = 0;
  for (const method of ['SIMPLE', 'RANKED'] as const) {
    const c = await competition(db, method);
    let rankedVoters: number[] = [];
    for (let round = -1; round < rounds; round += 1) {
      // Round -1 warms up (Prisma's query plans, the JIT, the server's caches) and is not recorded.
      for (const mode of (round + 2) % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        await db.prisma.$executeRawUnsafe(
          `ALTER TABLE "BallotEntry" ${mode === 'on' ? 'ENABLE' : 'DISABLE'} TRIGGER USER`,
        );
        // RANKED: every other run replaces the ballots of the previous run's voters.
        const ids =
          method === 'RANKED' && (round + 2) % 2 === 1 && rankedVoters.length > 0
            ? rankedVoters
            : Array.from({ length: votesPerRun }, () => (nextVoter += 1));
        if (method === 'RANKED') rankedVoters = ids;
        const started = process.hrtime.bigint();
        let next = 0;
        let failures = 0;
        // CLIENTS callers, each writing its next vote once the previous one is answered (as bench:castvote's 64 connections).
        await Promise.all(
          Array.from({ length: CLIENTS }, async () => {
            while (next < ids.length) {
              const v = ids[next++]!;
              await writer
                .write({
                  voterId: `bench-${v}`,
                  competitionId: c.id,
                  ballot:
                    method === 'SIMPLE'
                      ? { submissionId: c.submissions[v % 4]! }
                      : { ranking: [...c.submissions.slice(v % 4), ...c.submissions.slice(0, v % 4)] },
                  idempotencyKey: null,
                  requestHash: String(v),
                })
                .catch(() => (failures += 1));
            }
          }),
        );
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (round >= 0) {
          results[method]![mode].push((ids.length - failures) / seconds);
          failed[method]![mode] += failures;
        }
      }
    }
  }
  await db.prisma.$executeRawUnsafe(`ALTER TABLE "BallotEntry" ENABLE TRIGGER USER`);
  for (const [method, r] of Object.entries(results)) {
    const on = median(r.on);
    const off = median(r.off);
    console.log(
      `${backend.padEnd(8)} ${method.padEnd(7)} votes/s written, median of ${rounds}: triggers on ${on.toFixed(0)}, off ${off.toFixed(0)}, on/off ${(on / off).toFixed(2)}  (on: ${r.on.map((x) => x.toFixed(0)).join(' ')}; off: ${r.off.map((x) => x.toFixed(0)).join(' ')}; failed votes on ${failed[method]!.on}, off ${failed[method]!.off})`,
    );
  }
}

for (const backend of backendsOf(values.backend)) await withDatabase(backend, POOL_SIZE, (db) => measure(backend, db));
process.exit(0);
