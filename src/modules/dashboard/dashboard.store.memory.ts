import type { ViewerCounter } from './dashboard.store.js';

export function createMemoryViewerCounter(): ViewerCounter {
  const counts = new Map<string, number>();
  return {
    add(competitionId) {
      counts.set(competitionId, (counts.get(competitionId) ?? 0) + 1);
    },
    remove(competitionId) {
      const next = (counts.get(competitionId) ?? 0) - 1;
      if (next > 0) counts.set(competitionId, next);
      else counts.delete(competitionId);
    },
    count: async (competitionId) => counts.get(competitionId) ?? 0,
    close: async () => undefined,
  };
}
