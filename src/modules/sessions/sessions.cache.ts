/**
 * A per-instance cache of session statuses for hot paths in other modules (reactions ask "is this
 * session LIVE?" per request).
 *
 * Staleness bound: a status returned was the committed status at some instant within the last
 * `maxAgeMs` (an entry's age counts from the moment its load *started*). Transitions made on this
 * instance are written through at once (ordered by seq, so a slow load never overwrites a newer
 * status); transitions made on another instance are seen after at most `maxAgeMs`. Unknown
 * sessions are cached (as null) the same way, so bogus ids cost one read per `maxAgeMs` too.
 * Concurrent misses for one session share a single load.
 */
import type { SessionStatus } from '../../generated/prisma/enums.js';

export interface StatusEntry {
  /** null: no such session. */
  status: SessionStatus | null;
  /** The session topic's seq this status belongs to (orders loads and write-throughs). */
  seq: number;
}

export interface StatusCache {
  get(sessionId: string): Promise<SessionStatus | null>;
  /** Write-through after a committed transition on this instance. */
  put(sessionId: string, entry: StatusEntry): void;
  size(): number;
}

export function createStatusCache(opts: {
  load: (sessionId: string) => Promise<StatusEntry>;
  now: () => number;
  maxAgeMs: number;
  maxEntries: number;
}): StatusCache {
  const { load, now, maxAgeMs, maxEntries } = opts;
  const entries = new Map<string, { entry: StatusEntry; freshAt: number }>();
  const loading = new Map<string, Promise<StatusEntry>>();

  function store(sessionId: string, entry: StatusEntry, freshAt: number): void {
    const current = entries.get(sessionId);
    if (current && current.entry.seq > entry.seq) return;
    if (current?.entry.seq === entry.seq && current.freshAt > freshAt) return;
    entries.delete(sessionId);
    entries.set(sessionId, { entry, freshAt });
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
  }

  return {
    async get(sessionId) {
      const cached = entries.get(sessionId);
      if (cached && now() - cached.freshAt < maxAgeMs) return cached.entry.status;
      let pending = loading.get(sessionId);
      if (!pending) {
        const startedAt = now();
        pending = load(sessionId)
          .then((entry) => {
            store(sessionId, entry, startedAt);
            return entry;
          })
          .finally(() => loading.delete(sessionId));
        loading.set(sessionId, pending);
      }
      const loaded = await pending;
      // A write-through may have landed during the load: answer with the newer of the two.
      const stored = entries.get(sessionId)?.entry;
      return stored && stored.seq >= loaded.seq ? stored.status : loaded.status;
    },
    put(sessionId, entry) {
      store(sessionId, entry, now());
    },
    size: () => entries.size,
  };
}
