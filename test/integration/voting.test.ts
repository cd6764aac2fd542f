/**
 * The competition and SIMPLE voting slice over HTTP, on both backends: errors from the contract's
 * catalogue, idempotency, concurrency, and tallies equal to a recount of the stored ballots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CloseCompetitionDocument,
  CompetitionDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  LeaderboardDocument,
  MeDocument,
  OpenCompetitionDocument,
} from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';

describe.each(backends)('voting on $name', (backend) => {
  let infra: Awaited<ReturnType<typeof backend.start>>;
  let t: TestApp;
  let admin: string;
  const gql = <R, V>(doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string) =>
    execute(fetch, t.graphqlUrl, doc, variables, token);

  beforeAll(async () => {
    infra = await backend.start();
    t = await startTestApp(infra.env);
    admin = await tokenFor({ sub: 'admin', name: 'Ada Admin', role: 'ADMIN' });
  });
  afterAll(async () => {
    await t?.stop();
    await infra?.stop();
  });

  async function openCompetition(submissions = 3) {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Pitch night', votingMethod: 'SIMPLE' } }, admin),
    );
    const ids: string[] = [];
    for (let i = 0; i < submissions; i += 1) {
      const { createSubmission } = dataOf(
        await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title: `Startup ${i}` } }, admin),
      );
      ids.push(createSubmission.id);
    }
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    return { competitionId: createCompetition.id, submissionIds: ids };
  }

  async function recount(competitionId: string): Promise<Map<string, number>> {
    const rows = await t.app.database.prisma.ballotEntry.groupBy({
      by: ['submissionId'],
      where: { competitionId },
      _count: { _all: true },
    });
    return new Map(rows.map((r: { submissionId: string; _count: { _all: number } }) => [r.submissionId, r._count._all]));
  }

  it('upserts the user on first sight and reflects token claims in me', async () => {
    const token = await tokenFor({ sub: 'first-sight', name: 'Fiona', role: 'JUDGE' });
    expect(dataOf(await gql(MeDocument, {}, token)).me).toEqual({ id: 'first-sight', name: 'Fiona', role: 'JUDGE' });
    expect(dataOf(await gql(MeDocument, {})).me).toBeNull();
  });

  it('walks DRAFT → OPEN → CLOSED and counts votes only while OPEN', async () => {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: '  Demo day  ', votingMethod: 'SIMPLE' } }, admin),
    );
    expect(createCompetition).toMatchObject({ title: 'Demo day', status: 'DRAFT', votingMethod: 'SIMPLE', creditsPerVoter: null });
    const { createSubmission } = dataOf(
      await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title: 'Rocket' } }, admin),
    );
    const voter = await tokenFor({ sub: 'early-voter' });
    const vote = { input: { competitionId: createCompetition.id, submissionId: createSubmission.id } };

    const early = await gql(CastVoteDocument, vote, voter);
    expect(codesOf(early)).toEqual(['VOTING_CLOSED']);
    expect(early.errors?.[0]?.extensions).toMatchObject({ retryable: false, status: 'DRAFT' });

    expect(dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin)).openCompetition.status).toBe('OPEN');
    expect(codesOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin))).toEqual(['CONFLICT']);
    dataOf(await gql(CastVoteDocument, vote, voter));
    expect(dataOf(await gql(CloseCompetitionDocument, { id: createCompetition.id }, admin)).closeCompetition.status).toBe('CLOSED');

    const late = await gql(CastVoteDocument, vote, await tokenFor({ sub: 'late-voter' }));
    expect(codesOf(late)).toEqual(['VOTING_CLOSED']);
    const { competition } = dataOf(await gql(CompetitionDocument, { id: createCompetition.id }));
    expect(competition?.leaderboard).toEqual([{ submissionId: createSubmission.id, votes: 1, score: 1, rank: 1 }]);
  });

  it.each([
    { role: undefined, code: 'UNAUTHENTICATED' },
    { role: 'AUDIENCE', code: 'FORBIDDEN' },
    { role: 'JUDGE', code: 'FORBIDDEN' },
  ] as const)('rejects createCompetition by $role with $code', async ({ role, code }) => {
    const token = role && (await tokenFor({ sub: `user-${role}`, role }));
    const result = await gql(CreateCompetitionDocument, { input: { title: 'x', votingMethod: 'SIMPLE' } }, token);
    expect(codesOf(result)).toEqual([code]);
    expect(result.errors?.[0]?.extensions?.['retryable']).toBe(false);
    expect(result.data).toBeNull();
  });

  it('rejects a bad or expired token instead of treating the caller as anonymous', async () => {
    for (const token of ['not-a-jwt', await tokenFor({ sub: 'x' }, -10)]) {
      const result = await gql(MeDocument, {}, token);
      expect(codesOf(result)).toEqual(['UNAUTHENTICATED']);
    }
  });

  it.each([
    { name: 'unknown submission', input: () => ({ submissionId: 'nope' }), field: 'input.submissionId' },
    { name: 'missing submissionId', input: () => ({}), field: 'input.submissionId' },
    { name: 'votes on SIMPLE', input: (s: string) => ({ submissionId: s, votes: 2 }), field: 'input.votes' },
    { name: 'ranking on SIMPLE', input: (s: string) => ({ submissionId: s, ranking: [s] }), field: 'input.ranking' },
    { name: 'approvals on SIMPLE', input: (s: string) => ({ submissionId: s, approvals: [s] }), field: 'input.approvals' },
    { name: 'empty idempotencyKey', input: (s: string) => ({ submissionId: s, idempotencyKey: '' }), field: 'input.idempotencyKey' },
  ])('names the field for bad input: $name', async ({ input, field }) => {
    const { competitionId, submissionIds } = await openCompetition(1);
    const voter = await tokenFor({ sub: `bad-input-${field}` });
    const result = await gql(CastVoteDocument, { input: { competitionId, ...input(submissionIds[0]!) } }, voter);
    expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.extensions?.['field']).toBe(field);
    expect((await recount(competitionId)).size).toBe(0);
  });

  it('answers NOT_FOUND for unknown competitions and null for competition(id)', async () => {
    const voter = await tokenFor({ sub: 'nf' });
    expect(codesOf(await gql(CastVoteDocument, { input: { competitionId: 'missing', submissionId: 'x' } }, voter))).toEqual(['NOT_FOUND']);
    expect(codesOf(await gql(LeaderboardDocument, { competitionId: 'missing' }))).toEqual(['NOT_FOUND']);
    expect(dataOf(await gql(CompetitionDocument, { id: 'missing' })).competition).toBeNull();
  });

  it('allows one vote per voter per submission and honours idempotencyKey', async () => {
    const { competitionId, submissionIds } = await openCompetition(2);
    const voter = await tokenFor({ sub: 'idem' });
    const [s0, s1] = submissionIds as [string, string];
    const first = dataOf(await gql(CastVoteDocument, { input: { competitionId, submissionId: s0, idempotencyKey: 'k1' } }, voter));
    const retry = dataOf(await gql(CastVoteDocument, { input: { competitionId, submissionId: s0, idempotencyKey: 'k1' } }, voter));
    expect(retry.castVote.vote).toEqual(first.castVote.vote);

    const again = await gql(CastVoteDocument, { input: { competitionId, submissionId: s0 } }, voter);
    expect(codesOf(again)).toEqual(['CONFLICT']);
    expect(again.errors?.[0]?.extensions?.['reason']).toBe('ALREADY_VOTED');

    const reused = await gql(CastVoteDocument, { input: { competitionId, submissionId: s1, idempotencyKey: 'k1' } }, voter);
    expect(codesOf(reused)).toEqual(['CONFLICT']);
    expect(reused.errors?.[0]?.extensions?.['reason']).toBe('IDEMPOTENCY_KEY_REUSED');

    dataOf(await gql(CastVoteDocument, { input: { competitionId, submissionId: s1 } }, voter));
    const counts = await recount(competitionId);
    expect(Object.fromEntries(counts)).toEqual({ [s0]: 1, [s1]: 1 });
  });

  it('counts concurrent identical retries once', async () => {
    const { competitionId, submissionIds } = await openCompetition(1);
    const voter = await tokenFor({ sub: 'storm' });
    const input = { competitionId, submissionId: submissionIds[0]!, idempotencyKey: 'same-key' };
    const results = await Promise.all(Array.from({ length: 20 }, () => gql(CastVoteDocument, { input }, voter)));
    const ids = new Set(results.map((r) => dataOf(r).castVote.vote.id));
    expect(ids.size).toBe(1);
    expect(Object.fromEntries(await recount(competitionId))).toEqual({ [submissionIds[0]!]: 1 });
  });

  it('one key sent with two ballots at once: one counts, the other is IDEMPOTENCY_KEY_REUSED, no ballot without its vote', async () => {
    const { competitionId, submissionIds } = await openCompetition(2);
    const voter = await tokenFor({ sub: 'two-ballots' });
    const [s0, s1] = submissionIds as [string, string];
    const results = await Promise.all(
      [s0, s1, s0, s1, s0, s1].map((submissionId) => gql(CastVoteDocument, { input: { competitionId, submissionId, idempotencyKey: 'shared' } }, voter)),
    );
    const ok = results.filter((r) => !r.errors);
    expect(new Set(ok.map((r) => dataOf(r).castVote.vote.id)).size).toBe(1);
    for (const r of results.filter((r) => r.errors)) expect(r.errors?.[0]?.extensions?.['reason']).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(ok.length).toBe(3); // the winning ballot's copies replay it
    expect([...(await recount(competitionId)).values()]).toEqual([1]);
    expect(await t.app.database.prisma.vote.count({ where: { competitionId } })).toBe(1);
  });

  it('never loses a count under concurrent votes, and leaderboard equals the recount', async () => {
    const { competitionId, submissionIds } = await openCompetition(3);
    const voters = 150;
    const tokens = await Promise.all(Array.from({ length: voters }, (_, i) => tokenFor({ sub: `crowd-${i}` })));
    const results = await Promise.all(
      tokens.map((token, i) => gql(CastVoteDocument, { input: { competitionId, submissionId: submissionIds[i % 3]! } }, token)),
    );
    expect(results.filter((r) => r.errors)).toEqual([]);

    const counts = await recount(competitionId);
    const { leaderboard } = dataOf(await gql(LeaderboardDocument, { competitionId }));
    expect(leaderboard.reduce((sum, e) => sum + e.votes, 0)).toBe(voters);
    for (const entry of leaderboard) expect(entry.votes).toBe(counts.get(entry.submissionId) ?? 0);
    expect(leaderboard.map((e) => e.rank)).toEqual([1, 1, 1]);
  });

  it('maps GraphQL syntax and validation errors to BAD_USER_INPUT', async () => {
    for (const query of ['{ me { id ', '{ nope }', 'query { leaderboard(competitionId: true) { votes } }']) {
      const response = await fetch(t.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      expect(response.status).toBeLessThan(500);
      const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
      expect(body.errors[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', retryable: false });
    }
  });
});
