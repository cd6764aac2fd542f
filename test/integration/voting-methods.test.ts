/**
 * QUADRATIC, RANKED and APPROVAL over HTTP on both backends, with standings computed by hand,
 * ballot replacement, budgets under concurrency, and the instant-runoff result on close.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CloseCompetitionDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  LeaderboardDocument,
  LeaderboardMomentumDocument,
  OpenCompetitionDocument,
  RunoffDocument,
  type VotingMethod,
} from '../generated/graphql.js';
import { useTestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';

describe.each(backends)('voting methods on $name', (backend) => {
  const t = useTestApp(backend);
  let admin: string;
  const gql = t.gql;
  const voter = (name: string) => tokenFor({ sub: `${backend.name}-${name}` });

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'admin', name: 'Admin', role: 'ADMIN' });
  });

  async function competition(votingMethod: VotingMethod, titles: string[], creditsPerVoter?: number) {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: votingMethod, votingMethod, creditsPerVoter } }, admin),
    );
    const ids: Record<string, string> = {};
    for (const title of titles) {
      ids[title] = dataOf(
        await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title } }, admin),
      ).createSubmission.id;
    }
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    const standings = async () => {
      const { leaderboard } = dataOf(await gql(LeaderboardDocument, { competitionId: createCompetition.id }));
      const byTitle = Object.fromEntries(Object.entries(ids).map(([title, id]) => [id, title]));
      return Object.fromEntries(leaderboard.map((e) => [byTitle[e.submissionId], [e.votes, e.score, e.rank]]));
    };
    return { id: createCompetition.id, ids, standings };
  }

  it('QUADRATIC: sets votes, prices v², re-prices a change, refuses over budget', async () => {
    const c = await competition('QUADRATIC', ['a', 'b'], 20);
    const v = await voter('q1');
    const cast = (title: string, votes: number) =>
      gql(CastVoteDocument, { input: { competitionId: c.id, submissionId: c.ids[title], votes } }, v);

    expect(dataOf(await cast('a', 3)).castVote.creditsRemaining).toBe(11);
    expect(dataOf(await cast('b', 3)).castVote.creditsRemaining).toBe(2);
    const over = await cast('a', 4);
    expect(codesOf(over)).toEqual(['BUDGET_EXCEEDED']);
    expect(over.errors?.[0]?.extensions).toMatchObject({
      cost: 25,
      credits: 20,
      creditsRemaining: 2,
      retryable: false,
    });
    expect(dataOf(await cast('a', 1)).castVote.creditsRemaining).toBe(10);
    expect(await c.standings()).toEqual({ b: [1, 3, 1], a: [1, 1, 2] });
    expect(dataOf(await cast('b', 0)).castVote.creditsRemaining).toBe(19);
    expect(await c.standings()).toEqual({ a: [1, 1, 1], b: [0, 0, 2] });
    expect(
      codesOf(await gql(CastVoteDocument, { input: { competitionId: c.id, submissionId: c.ids['a'], votes: -1 } }, v)),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('QUADRATIC: concurrent ballots of one voter never exceed the budget', async () => {
    const titles = Array.from({ length: 8 }, (_, i) => `s${i}`);
    const c = await competition('QUADRATIC', titles, 20);
    const v = await voter('q-storm');
    const results = await Promise.all(
      titles.map((title) =>
        gql(CastVoteDocument, { input: { competitionId: c.id, submissionId: c.ids[title], votes: 4 } }, v),
      ),
    );
    // 4 votes cost 16: only one of them fits in 20 credits.
    expect(results.filter((r) => !r.errors).length).toBe(1);
    expect(results.flatMap(codesOf).filter((code) => code === 'BUDGET_EXCEEDED').length).toBe(7);
  });

  it('QUADRATIC needs creditsPerVoter, and only QUADRATIC takes it', async () => {
    const missing = await gql(CreateCompetitionDocument, { input: { title: 'q', votingMethod: 'QUADRATIC' } }, admin);
    expect(missing.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.creditsPerVoter' });
    const extra = await gql(
      CreateCompetitionDocument,
      { input: { title: 's', votingMethod: 'SIMPLE', creditsPerVoter: 5 } },
      admin,
    );
    expect(extra.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.creditsPerVoter' });
  });

  it('RANKED: Borda points, full-ballot replacement, and the instant-runoff winner on close', async () => {
    const c = await competition('RANKED', ['a', 'b', 'c']);
    const rank = async (name: string, titles: string[]) =>
      dataOf(
        await gql(
          CastVoteDocument,
          { input: { competitionId: c.id, ranking: titles.map((x) => c.ids[x]!) } },
          await voter(name),
        ),
      );
    await rank('r1', ['a', 'b', 'c']);
    await rank('r2', ['b', 'a']);
    await rank('r3', ['a']);
    // n = 3: a 2+1+2 = 5, b 1+2 = 3, c 0 (listed by r1, so it counts as a vote).
    expect(await c.standings()).toEqual({ a: [3, 5, 1], b: [2, 3, 2], c: [1, 0, 3] });
    await rank('r2', ['c']);
    expect(await c.standings()).toEqual({ a: [2, 4, 1], c: [2, 2, 2], b: [1, 1, 3] });

    const dup = await gql(
      CastVoteDocument,
      { input: { competitionId: c.id, ranking: [c.ids['a']!, c.ids['a']!] } },
      await voter('r4'),
    );
    expect(dup.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.ranking[1]' });

    dataOf(await gql(CloseCompetitionDocument, { id: c.id }, admin));
    const { competition: closed } = dataOf(await gql(RunoffDocument, { id: c.id }));
    // Ballots: [a,b,c], [c], [a] → a has 2 of 3 first preferences: a majority in round 1.
    expect(closed?.runoff).toEqual({
      winnerId: c.ids['a'],
      rounds: [
        {
          round: 1,
          tallies: [
            { submissionId: c.ids['a'], votes: 2 },
            ...[c.ids['b']!, c.ids['c']!]
              .map((id) => ({ submissionId: id, votes: id === c.ids['c'] ? 1 : 0 }))
              .sort((x, y) => y.votes - x.votes || (x.submissionId < y.submissionId ? -1 : 1)),
          ],
          eliminated: [],
          exhaustedBallots: 0,
        },
      ],
    });
  });

  it('APPROVAL: the approved set replaces the previous one', async () => {
    const c = await competition('APPROVAL', ['a', 'b', 'c']);
    const approve = async (name: string, titles: string[]) =>
      dataOf(
        await gql(
          CastVoteDocument,
          { input: { competitionId: c.id, approvals: titles.map((x) => c.ids[x]!) } },
          await voter(name),
        ),
      );
    await approve('p1', ['a', 'b']);
    await approve('p2', ['b']);
    expect(await c.standings()).toEqual({ b: [2, 2, 1], a: [1, 1, 2], c: [0, 0, 3] });
    await approve('p1', ['c']);
    const standings = await c.standings();
    expect(standings).toMatchObject({ b: [1, 1, 1], c: [1, 1, 1], a: [0, 0, 3] });
    const wrong = await gql(
      CastVoteDocument,
      { input: { competitionId: c.id, submissionId: c.ids['a'] } },
      await voter('p3'),
    );
    expect(wrong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.submissionId' });
  });

  it('reports momentum: ballot activity in the last minute', async () => {
    const c = await competition('SIMPLE', ['a', 'b']);
    for (const name of ['m1', 'm2', 'm3']) {
      dataOf(
        await gql(CastVoteDocument, { input: { competitionId: c.id, submissionId: c.ids['a'] } }, await voter(name)),
      );
    }
    const { leaderboard } = dataOf(await gql(LeaderboardMomentumDocument, { competitionId: c.id }));
    expect(leaderboard.find((e) => e.submissionId === c.ids['a'])).toMatchObject({
      votes: 3,
      votesLastMinute: 3,
      momentum: 3,
    });
    expect(leaderboard.find((e) => e.submissionId === c.ids['b'])).toMatchObject({ votesLastMinute: 0, momentum: 0 });
  });
});
