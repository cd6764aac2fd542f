/** Pure tally arithmetic, shared by the leaderboard query and the live updates. */

export interface TallyEntry {
  submissionId: string;
  votes: number;
  score: number;
  rank: number;
}

export interface TallyCount {
  submissionId: string;
  votes: number;
  score: number;
}

/**
 * One entry per submission, sorted by score (desc) then submissionId; equal scores share a rank
 * and the next rank skips (1, 1, 3), as the contract's TallyEntry says.
 */
export function rankEntries(counts: readonly TallyCount[]): TallyEntry[] {
  const sorted = [...counts].sort((a, b) =>
    b.score !== a.score ? b.score - a.score : a.submissionId < b.submissionId ? -1 : a.submissionId > b.submissionId ? 1 : 0,
  );
  const entries: TallyEntry[] = [];
  sorted.forEach((count, index) => {
    const previous = entries[index - 1];
    const rank = previous && previous.score === count.score ? previous.rank : index + 1;
    entries.push({ submissionId: count.submissionId, votes: count.votes, score: count.score, rank });
  });
  return entries;
}

export const totalVotes = (entries: readonly TallyEntry[]): number => entries.reduce((sum, e) => sum + e.votes, 0);
