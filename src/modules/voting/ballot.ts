/**
 * Parsing a CastVoteInput into the ballot action its competition's method allows. Pure: the
 * caller passes the competition's submission ids. Every rejection names the input field.
 */
import { VotingMethod } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';

export type Ballot =
  | { method: 'SIMPLE'; submissionId: string }
  | { method: 'QUADRATIC'; submissionId: string; votes: number }
  | { method: 'RANKED'; ranking: string[] }
  | { method: 'APPROVAL'; approvals: string[] };

export interface BallotInput {
  submissionId?: string | null;
  votes?: number | null;
  ranking?: readonly string[] | null;
  approvals?: readonly string[] | null;
}

const FIELDS_BY_METHOD: Record<VotingMethod, readonly (keyof BallotInput)[]> = {
  SIMPLE: ['submissionId'],
  QUADRATIC: ['submissionId', 'votes'],
  RANKED: ['ranking'],
  APPROVAL: ['approvals'],
};
const ALL_FIELDS: readonly (keyof BallotInput)[] = ['submissionId', 'votes', 'ranking', 'approvals'];
/** Above this, v² overflows any sensible budget long before it matters. */
const MAX_QUADRATIC_VOTES = 10_000;

const present = (value: unknown): boolean => value !== undefined && value !== null;

function knownSubmission(field: string, id: string, submissionIds: ReadonlySet<string>): string {
  if (!submissionIds.has(id)) throw badInput(field, `Submission ${id} is not part of this competition`);
  return id;
}

function distinctKnown(field: string, ids: readonly string[], submissionIds: ReadonlySet<string>): string[] {
  const seen = new Set<string>();
  ids.forEach((id, index) => {
    knownSubmission(`${field}[${index}]`, id, submissionIds);
    if (seen.has(id)) throw badInput(`${field}[${index}]`, `Submission ${id} appears twice in ${field}`);
    seen.add(id);
  });
  return [...ids];
}

export function parseBallot(method: VotingMethod, input: BallotInput, submissionIds: ReadonlySet<string>): Ballot {
  const allowed = FIELDS_BY_METHOD[method];
  for (const field of ALL_FIELDS) {
    if (present(input[field]) && !allowed.includes(field)) {
      throw badInput(`input.${field}`, `${field} is not used by ${method} voting; send ${allowed.join(' and ')}`);
    }
  }
  for (const field of allowed) {
    if (!present(input[field])) throw badInput(`input.${field}`, `${field} is required for ${method} voting`);
  }
  switch (method) {
    case VotingMethod.SIMPLE:
      return { method, submissionId: knownSubmission('input.submissionId', input.submissionId!, submissionIds) };
    case VotingMethod.QUADRATIC: {
      const votes = input.votes!;
      if (!Number.isInteger(votes) || votes < 0) throw badInput('input.votes', 'votes must be a whole number ≥ 0 (0 withdraws them)');
      if (votes > MAX_QUADRATIC_VOTES) throw badInput('input.votes', `votes must be at most ${MAX_QUADRATIC_VOTES}`);
      return { method, submissionId: knownSubmission('input.submissionId', input.submissionId!, submissionIds), votes };
    }
    case VotingMethod.RANKED: {
      if (input.ranking!.length === 0) throw badInput('input.ranking', 'ranking must list at least one submission');
      return { method, ranking: distinctKnown('input.ranking', input.ranking!, submissionIds) };
    }
    case VotingMethod.APPROVAL:
      return { method, approvals: distinctKnown('input.approvals', input.approvals!, submissionIds) };
  }
}

/** QUADRATIC: what a voter's ballot costs, v votes on one submission costing v². */
export function quadraticCost(votesBySubmission: Iterable<number>): number {
  let cost = 0;
  for (const votes of votesBySubmission) cost += votes * votes;
  return cost;
}

/** RANKED: Borda points of a 1-based position with n submissions in the competition. */
export const bordaPoints = (submissionCount: number, position: number): number => Math.max(0, submissionCount - position);
