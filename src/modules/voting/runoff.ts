/**
 * Instant-runoff (IRV) for RANKED competitions, computed when a competition closes. Each round
 * counts every ballot for its highest-ranked remaining submission; a submission with more than
 * half of the ballots still in play wins. Otherwise the submission with the fewest votes is
 * eliminated. Ties for last place are broken by fewer first-round votes, then by the greater
 * submissionId, so the result is deterministic and anyone can recompute it.
 */

export interface RunoffTally {
  submissionId: string;
  votes: number;
}

export interface RunoffRound {
  round: number;
  /** Every submission still in the race, most votes first (then submissionId). */
  tallies: RunoffTally[];
  /** Eliminated at the end of this round (empty in the deciding round). */
  eliminated: string[];
  /** Ballots whose every ranked submission is already eliminated. */
  exhaustedBallots: number;
}

export interface RunoffResult {
  winnerId: string | null;
  rounds: RunoffRound[];
}

export function instantRunoff(candidates: readonly string[], ballots: readonly (readonly string[])[]): RunoffResult {
  const remaining = new Set(candidates);
  const rounds: RunoffRound[] = [];
  let firstRound: Map<string, number> | undefined;

  while (remaining.size > 0) {
    const counts = new Map([...remaining].map((id) => [id, 0]));
    let exhausted = 0;
    for (const ballot of ballots) {
      const choice = ballot.find((id) => remaining.has(id));
      if (choice === undefined) exhausted += 1;
      else counts.set(choice, counts.get(choice)! + 1);
    }
    firstRound ??= counts;
    const tallies = [...counts]
      .map(([submissionId, votes]) => ({ submissionId, votes }))
      .sort((a, b) => b.votes - a.votes || (a.submissionId < b.submissionId ? -1 : 1));
    const active = ballots.length - exhausted;
    const leader = tallies[0]!;
    if (active === 0) {
      // Nobody voted (or every ballot is exhausted): there is no winner to declare.
      rounds.push({ round: rounds.length + 1, tallies, eliminated: [], exhaustedBallots: exhausted });
      return { winnerId: null, rounds };
    }
    if (leader.votes * 2 > active || remaining.size === 1) {
      rounds.push({ round: rounds.length + 1, tallies, eliminated: [], exhaustedBallots: exhausted });
      return { winnerId: leader.submissionId, rounds };
    }
    const loser = [...tallies].sort(
      (a, b) =>
        a.votes - b.votes ||
        firstRound!.get(a.submissionId)! - firstRound!.get(b.submissionId)! ||
        (a.submissionId < b.submissionId ? 1 : -1),
    )[0]!.submissionId;
    remaining.delete(loser);
    rounds.push({ round: rounds.length + 1, tallies, eliminated: [loser], exhaustedBallots: exhausted });
  }
  return { winnerId: null, rounds };
}
