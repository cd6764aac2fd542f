/**
 * Ballots of every voting method thrown at one or more instances in concurrent bursts (idempotent
 * retries, replaced ballots, QUADRATIC re-allocations and withdrawals, over-budget refusals, votes
 * already cast), and the recount a test compares the published standings with: computed by SQL
 * straight from the BallotEntry rows, independently of the running totals the server reads.
 */
import { expect } from 'vitest';
import {
  CastVoteDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  OpenCompetitionDocument,
  type VotingMethod,
} from '../generated/graphql.js';
import { dataOf, execute, tokenFor, type GraphQLResponse } from './graphql.js';

export const METHODS: readonly VotingMethod[] = ['SIMPLE', 'QUADRATIC', 'RANKED', 'APPROVAL'];
const CREDITS = 30;

export interface ScenarioCompetition {
  method: VotingMethod;
  id: string;
  submissionIds: string[];
}

/** Runs one SQL statement with `$1` parameters (PGlite through Prisma, or a pg client). */
export type Sql = <R>(text: string, params: unknown[]) => Promise<R[]>;

export interface Standing {
  submissionId: string;
  votes: number;
  score: number;
}

/** One OPEN competition per method, each with `submissions` submissions. */
export async function openCompetitions(
  graphqlUrl: string,
  admin: string,
  submissions = 3,
): Promise<ScenarioCompetition[]> {
  const competitions: ScenarioCompetition[] = [];
  for (const method of METHODS) {
    const { createCompetition } = dataOf(
      await execute(
        fetch,
        graphqlUrl,
        CreateCompetitionDocument,
        {
          input: {
            title: `Exact ${method}`,
            votingMethod: method,
            creditsPerVoter: method === 'QUADRATIC' ? CREDITS : null,
          },
        },
        admin,
      ),
    );
    const competition = { method, id: createCompetition.id, submissionIds: [] as string[] };
    for (let i = 0; i < submissions; i += 1) await addSubmission(graphqlUrl, admin, competition);
    dataOf(await execute(fetch, graphqlUrl, OpenCompetitionDocument, { id: competition.id }, admin));
    competitions.push(competition);
  }
  return competitions;
}

export async function addSubmission(
  graphqlUrl: string,
  admin: string,
  competition: ScenarioCompetition,
): Promise<void> {
  const { createSubmission } = dataOf(
    await execute(
      fetch,
      graphqlUrl,
      CreateSubmissionDocument,
      {
        input: { competitionId: competition.id, title: `${competition.method} ${competition.submissionIds.length}` },
      },
      admin,
    ),
  );
  competition.submissionIds.push(createSubmission.id);
}

/** Rotated by `shift`: a different order (and for RANKED a different first choice) per voter and round. */
const rotate = <T>(items: readonly T[], shift: number): T[] => items.map((_, i) => items[(i + shift) % items.length]!);

/** The ballot voter `v` sends in round `round`; the same (voter, round) always gives the same input. */
function ballotOf(competition: ScenarioCompetition, v: number, round: number): Record<string, unknown> {
  const ids = competition.submissionIds;
  const n = ids.length;
  switch (competition.method) {
    case 'SIMPLE':
      return { submissionId: ids[(v + round) % n] };
    case 'QUADRATIC':
      // 0 withdraws; 5 or 6 votes (25, 36 credits) on top of earlier allocations are often refused.
      return { submissionId: ids[(v * 7 + round) % n], votes: (v + round * 3) % 7 };
    case 'RANKED':
      return { ranking: rotate(ids, v + round).slice(0, 1 + ((v + round) % n)) };
    case 'APPROVAL':
      return { approvals: ids.filter((_, i) => ((v * 5 + round * 3) >> i) % 2 === 1) };
  }
}

export interface Burst {
  /** Re-sends every keyed request of the burst (same key, same ballot) to these instances: nothing may count twice. */
  retry(graphqlUrls: readonly string[]): Promise<void>;
}

/**
 * Round `round` of `voters` voters on every competition, all at once, spread over `graphqlUrls`:
 * each ballot is sent twice at the same moment with one idempotency key (both answers must be the
 * same vote, or the same refusal); SIMPLE voters also vote once more without a key, and every
 * fourth sends another ballot with the same key. Refusals the rules allow (ALREADY_VOTED,
 * IDEMPOTENCY_KEY_REUSED, BUDGET_EXCEEDED) are fine; anything else fails.
 */
export async function burst(
  graphqlUrls: readonly string[],
  competitions: readonly ScenarioCompetition[],
  round: number,
  voters: number,
  prefix: string,
): Promise<Burst> {
  const tokens = await Promise.all(Array.from({ length: voters }, (_, v) => tokenFor({ sub: `${prefix}-voter-${v}` })));
  const keyed: { token: string; input: Record<string, unknown> }[] = [];
  const single: { token: string; input: Record<string, unknown> }[] = [];
  const rivals: { token: string; input: Record<string, unknown> }[] = [];
  for (const competition of competitions) {
    for (let v = 0; v < voters; v += 1) {
      const input = { competitionId: competition.id, ...ballotOf(competition, v, round) };
      const idempotencyKey = `${prefix}-${round}-${competition.method}-${v}`;
      keyed.push({ token: tokens[v]!, input: { ...input, idempotencyKey } });
      if (competition.method === 'SIMPLE') {
        single.push({
          token: tokens[v]!,
          input: { competitionId: competition.id, ...ballotOf(competition, v, round + 1) },
        });
        // The same key with another ballot at the same moment: one of them counts, and a ballot
        // written for the loser is taken back in its transaction.
        if (v % 4 === 0)
          rivals.push({
            token: tokens[v]!,
            input: { competitionId: competition.id, ...ballotOf(competition, v, round + 2), idempotencyKey },
          });
      }
    }
  }
  let sent = 0;
  let urls = graphqlUrls;
  const send = ({ token, input }: { token: string; input: Record<string, unknown> }) =>
    execute(fetch, urls[sent++ % urls.length]!, CastVoteDocument, { input: input as never }, token);

  // A key's accepted vote is what every later request with it gets back. (A refused one stored
  // nothing: sent again later, it is a new attempt that may be accepted.)
  const accepted = new Map<string, string>();
  const rivalKeys = new Set(rivals.map((r) => String(r.input['idempotencyKey'])));
  const checkPair = (a: GraphQLResponse<unknown>, b: GraphQLResponse<unknown>, key: string) => {
    // A refused request claims nothing, so a rival with the same key and another ballot can commit
    // between the two twins: the one decided before sees its ballot refused (ALREADY_VOTED), the
    // one decided after sees the key taken by another ballot (IDEMPOTENCY_KEY_REUSED). Both are
    // refusals and neither counts; any other difference is a bug.
    const refusals = new Set([outcome(a), outcome(b)]);
    const raced =
      rivalKeys.has(key) &&
      refusals.size === 2 &&
      refusals.has('CONFLICT:ALREADY_VOTED') &&
      refusals.has('CONFLICT:IDEMPOTENCY_KEY_REUSED');
    if (!raced) expect(outcome(b), key).toEqual(outcome(a));
    const previous = accepted.get(key);
    if (previous !== undefined) expect(outcome(a), `${key} replayed`).toEqual(previous);
    else if (outcome(a).startsWith('ok ')) accepted.set(key, outcome(a));
  };
  const sendPairs = async () => {
    const pairs = await Promise.all(keyed.map((request) => Promise.all([send(request), send(request)])));
    for (const [i, [a, b]] of pairs.entries()) checkPair(a, b, String(keyed[i]!.input['idempotencyKey']));
  };
  const singles = single.map(send);
  const rivalry = rivals.map(send);
  await sendPairs();
  for (const result of await Promise.all(singles))
    expect(['ok', 'CONFLICT:ALREADY_VOTED']).toContain(outcome(result).split(' ')[0]);
  for (const result of await Promise.all(rivalry))
    expect(['ok', 'CONFLICT:ALREADY_VOTED', 'CONFLICT:IDEMPOTENCY_KEY_REUSED']).toContain(
      outcome(result).split(' ')[0],
    );
  return {
    async retry(graphqlUrls) {
      urls = graphqlUrls;
      await sendPairs();
    },
  };
}

/** "ok <vote id>" or "<code>:<reason>", and nothing unexpected. */
function outcome(result: GraphQLResponse<unknown>): string {
  const error = result.errors?.[0];
  if (!error) return `ok ${(result.data as { castVote: { vote: { id: string } } }).castVote.vote.id}`;
  const code = String(error.extensions?.['code']);
  const reason = error.extensions?.['reason'];
  const label = reason === undefined ? code : `${code}:${typeof reason === 'string' ? reason : JSON.stringify(reason)}`;
  expect(['CONFLICT:ALREADY_VOTED', 'CONFLICT:IDEMPOTENCY_KEY_REUSED', 'BUDGET_EXCEEDED']).toContain(label);
  return label;
}

/** The standings recounted from the stored ballots by SQL, in submission order (zeros included). */
export async function recount(sql: Sql, competitionId: string): Promise<Standing[]> {
  return inSubmissionOrder(
    await sql<Standing>(
      `SELECT s."id" AS "submissionId", COUNT(b."submissionId")::int AS "votes",
            (CASE WHEN c."votingMethod" = 'RANKED'
                  THEN COALESCE(SUM((SELECT COUNT(*) FROM "Submission" x WHERE x."competitionId" = c."id") - b."position"), 0)
                  ELSE COALESCE(SUM(b."votes"), 0) END)::float8 AS "score"
     FROM "Competition" c
     JOIN "Submission" s ON s."competitionId" = c."id"
     LEFT JOIN "BallotEntry" b ON b."competitionId" = c."id" AND b."submissionId" = s."id"
     WHERE c."id" = $1
     GROUP BY c."id", c."votingMethod", s."id"`,
      [competitionId],
    ),
  );
}

/** TallyTotal + TallyDelta straight from the tables (what every read adds up), in submission order. */
export async function runningTotals(sql: Sql, competitionId: string): Promise<Standing[]> {
  const standings = await sql<Standing>(
    `WITH running AS (
       SELECT "submissionId", "voters", "votes", "positions" FROM "TallyTotal" WHERE "competitionId" = $1
       UNION ALL
       SELECT "submissionId", "voters", "votes", "positions" FROM "TallyDelta" WHERE "competitionId" = $1)
     SELECT s."id" AS "submissionId", COALESCE(SUM(r."voters"), 0)::int AS "votes",
            (CASE WHEN c."votingMethod" = 'RANKED'
                  THEN (SELECT COUNT(*) FROM "Submission" x WHERE x."competitionId" = c."id") * COALESCE(SUM(r."voters"), 0) - COALESCE(SUM(r."positions"), 0)
                  ELSE COALESCE(SUM(r."votes"), 0) END)::float8 AS "score"
     FROM "Competition" c
     JOIN "Submission" s ON s."competitionId" = c."id"
     LEFT JOIN running r ON r."submissionId" = s."id"
     WHERE c."id" = $1
     GROUP BY c."id", c."votingMethod", s."id"`,
    [competitionId],
  );
  return inSubmissionOrder(standings);
}

/** Published or queried entries in the recount's shape and order, checking they are sorted by score. */
export function standingsOf(
  entries: readonly { submissionId: string; votes: number; score: number; rank: number }[],
): Standing[] {
  for (let i = 1; i < entries.length; i += 1) {
    expect(entries[i]!.score).toBeLessThanOrEqual(entries[i - 1]!.score);
    expect(entries[i]!.rank).toBe(entries[i]!.score === entries[i - 1]!.score ? entries[i - 1]!.rank : i + 1);
  }
  return inSubmissionOrder(entries.map(({ submissionId, votes, score }) => ({ submissionId, votes, score })));
}

const inSubmissionOrder = (standings: Standing[]): Standing[] =>
  [...standings].sort((a, b) => (a.submissionId < b.submissionId ? -1 : a.submissionId > b.submissionId ? 1 : 0));
