/** Pure tally arithmetic, shared by the leaderboard query and the live updates. */

export interface TallyEntry extends TallyCount {
  rank: number;
}

export interface TallyCount {
  submissionId: string;
  votes: number;
  score: number;
  /** Ballot changes that gave this submission something in the last 60 s. */
  votesLastMinute?: number;
  /** votesLastMinute minus the same count for the minute before. */
  momentum?: number;
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
    const rank = previous?.score === count.score ? previous.rank : index + 1;
    entries.push({ ...count, rank });
  });
  return entries;
}

export const totalVotes = (entries: readonly TallyEntry[]): number => entries.reduce((sum, e) => sum + e.votes, 0);
