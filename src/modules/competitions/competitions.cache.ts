/**
 * Submissions by id for the fields that show them next to a tally (TallyEntry.submission,
 * Vote.submission). A submission never changes once created (no rename; rows go only with their
 * competition), so a cached row never goes stale: a tally update resolves its entries' titles
 * from memory, once per update for all the watchers sharing its execution, and the update's
 * payload on the bus stays ids and counts. Misses asked for in the same turn (the entries of one
 * list) are loaded with one query. `founder` is not cached: Submission.founder reads it.
 */
import type { Submission } from '../../generated/prisma/client.js';

/** Rows kept; the oldest cached goes first beyond it (a competition's entries come back in one query). */
const DEFAULT_MAX_ENTRIES = 20_000;

export interface SubmissionCache {
  /** The submission, synchronously when cached; null for an unknown id (not cached). */
  get(id: string): Submission | Promise<Submission | null>;
}

interface Waiter {
  resolve: (row: Submission | null) => void;
  reject: (error: unknown) => void;
}

export function createSubmissionCache(
  load: (ids: readonly string[]) => Promise<Submission[]>,
  maxEntries = DEFAULT_MAX_ENTRIES,
): SubmissionCache {
  const cached = new Map<string, Submission>();
  let batch: Map<string, Waiter[]> | undefined;

  async function run(waiting: Map<string, Waiter[]>): Promise<void> {
    try {
      const rows = new Map((await load([...waiting.keys()])).map((row) => [row.id, row]));
      for (const row of rows.values()) {
        if (cached.size >= maxEntries) cached.delete(cached.keys().next().value!);
        cached.set(row.id, row);
      }
      for (const [id, waiters] of waiting) for (const { resolve } of waiters) resolve(rows.get(id) ?? null);
    } catch (error) {
      for (const waiters of waiting.values()) for (const { reject } of waiters) reject(error);
    }
  }

  return {
    get(id) {
      const hit = cached.get(id);
      if (hit) return hit;
      return new Promise((resolve, reject) => {
        if (!batch) {
          batch = new Map();
          const waiting = batch;
          // After the current synchronous work: graphql-js resolves a list's items in one loop.
          queueMicrotask(() => {
            batch = undefined;
            void run(waiting);
          });
        }
        const waiters = batch.get(id);
        if (waiters) waiters.push({ resolve, reject });
        else batch.set(id, [{ resolve, reject }]);
      });
    },
  };
}
