/**
 * The competition and SIMPLE voting slice over HTTP, on both backends: errors from the contract's
 * catalogue, idempotency, concurrency, and tallies equal to a recount of the stored ballots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CastVoteOnSubmissionDocument,
  CloseCompetitionDocument,
  CompetitionDocument,
  CompetitionsDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  LeaderboardDocument,
  LeaderboardTitlesDocument,
  MeDocument,
  OpenCompetitionDocument,
  TallyUntilClosedDocument,
} from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe, type Transport } from '../support/clients.js';
import { codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';

/** `promise`, or a rejection naming `what` after `ms`: a stream that never ends fails the test with a reason. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
        await gql(
          CreateSubmissionDocument,
          { input: { competitionId: createCompetition.id, title: `Startup ${i}` } },
          admin,
        ),
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
    return new Map(
      rows.map((r: { submissionId: string; _count: { _all: number } }) => [r.submissionId, r._count._all]),
    );
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
    expect(createCompetition).toMatchObject({
      title: 'Demo day',
      status: 'DRAFT',
      votingMethod: 'SIMPLE',
      creditsPerVoter: null,
    });
    const { createSubmission } = dataOf(
      await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title: 'Rocket' } }, admin),
    );
    const voter = await tokenFor({ sub: 'early-voter' });
    const vote = { input: { competitionId: createCompetition.id, submissionId: createSubmission.id } };

    const early = await gql(CastVoteDocument, vote, voter);
    expect(codesOf(early)).toEqual(['VOTING_CLOSED']);
    expect(early.errors?.[0]?.extensions).toMatchObject({ retryable: false, status: 'DRAFT' });

    expect(dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin)).openCompetition.status).toBe(
      'OPEN',
    );
    expect(codesOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin))).toEqual(['CONFLICT']);
    dataOf(await gql(CastVoteDocument, vote, voter));
    expect(
      dataOf(await gql(CloseCompetitionDocument, { id: createCompetition.id }, admin)).closeCompetition.status,
    ).toBe('CLOSED');

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
    {
      name: 'approvals on SIMPLE',
      input: (s: string) => ({ submissionId: s, approvals: [s] }),
      field: 'input.approvals',
    },
    {
      name: 'empty idempotencyKey',
      input: (s: string) => ({ submissionId: s, idempotencyKey: '' }),
      field: 'input.idempotencyKey',
    },
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
    expect(
      codesOf(await gql(CastVoteDocument, { input: { competitionId: 'missing', submissionId: 'x' } }, voter)),
    ).toEqual(['NOT_FOUND']);
    expect(codesOf(await gql(LeaderboardDocument, { competitionId: 'missing' }))).toEqual(['NOT_FOUND']);
    expect(dataOf(await gql(CompetitionDocument, { id: 'missing' })).competition).toBeNull();
  });

  it('allows one vote per voter per submission and honours idempotencyKey', async () => {
    const { competitionId, submissionIds } = await openCompetition(2);
    const voter = await tokenFor({ sub: 'idem' });
    const [s0, s1] = submissionIds as [string, string];
    const first = dataOf(
      await gql(CastVoteDocument, { input: { competitionId, submissionId: s0, idempotencyKey: 'k1' } }, voter),
    );
    const retry = dataOf(
      await gql(CastVoteDocument, { input: { competitionId, submissionId: s0, idempotencyKey: 'k1' } }, voter),
    );
    expect(retry.castVote.vote).toEqual(first.castVote.vote);

    const again = await gql(CastVoteDocument, { input: { competitionId, submissionId: s0 } }, voter);
    expect(codesOf(again)).toEqual(['CONFLICT']);
    expect(again.errors?.[0]?.extensions?.['reason']).toBe('ALREADY_VOTED');

    const reused = await gql(
      CastVoteDocument,
      { input: { competitionId, submissionId: s1, idempotencyKey: 'k1' } },
      voter,
    );
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
      [s0, s1, s0, s1, s0, s1].map((submissionId) =>
        gql(CastVoteDocument, { input: { competitionId, submissionId, idempotencyKey: 'shared' } }, voter),
      ),
    );
    const ok = results.filter((r) => !r.errors);
    expect(new Set(ok.map((r) => dataOf(r).castVote.vote.id)).size).toBe(1);
    for (const r of results.filter((r) => r.errors))
      expect(r.errors?.[0]?.extensions?.['reason']).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(ok.length).toBe(3); // the winning ballot's copies replay it
    expect([...(await recount(competitionId)).values()]).toEqual([1]);
    expect(await t.app.database.prisma.vote.count({ where: { competitionId } })).toBe(1);
  });

  it('never loses a count under concurrent votes, and leaderboard equals the recount', async () => {
    const { competitionId, submissionIds } = await openCompetition(3);
    const voters = 150;
    const tokens = await Promise.all(Array.from({ length: voters }, (_, i) => tokenFor({ sub: `crowd-${i}` })));
    const results = await Promise.all(
      tokens.map((token, i) =>
        gql(CastVoteDocument, { input: { competitionId, submissionId: submissionIds[i % 3]! } }, token),
      ),
    );
    expect(results.filter((r) => r.errors)).toEqual([]);

    const counts = await recount(competitionId);
    const { leaderboard } = dataOf(await gql(LeaderboardDocument, { competitionId }));
    expect(leaderboard.reduce((sum, e) => sum + e.votes, 0)).toBe(voters);
    for (const entry of leaderboard) expect(entry.votes).toBe(counts.get(entry.submissionId) ?? 0);
    expect(leaderboard.map((e) => e.rank)).toEqual([1, 1, 1]);
  });

  it('lists competitions newest first, only those with the status when given; first 1..100, default 50', async () => {
    const made: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      made.push(
        dataOf(await gql(CreateCompetitionDocument, { input: { title: `Listed ${i}`, votingMethod: 'SIMPLE' } }, admin))
          .createCompetition.id,
      );
    }
    // Newer than anything else in this database, in creation order, whatever the clock's resolution.
    for (const [i, id] of made.entries()) {
      await t.app.database.prisma.competition.update({
        where: { id },
        data: { createdAt: new Date(Date.UTC(2100, 0, 1 + i)) },
      });
    }
    const [draft, open, closed] = made as [string, string, string];
    dataOf(await gql(CreateSubmissionDocument, { input: { competitionId: draft, title: 'Listed pitch' } }, admin));
    dataOf(await gql(OpenCompetitionDocument, { id: open }, admin));
    dataOf(await gql(OpenCompetitionDocument, { id: closed }, admin));
    dataOf(await gql(CloseCompetitionDocument, { id: closed }, admin));

    const newest = dataOf(await gql(CompetitionsDocument, { first: 3 })).competitions;
    expect(newest.map((c) => [c.id, c.title, c.status, c.submissions])).toEqual([
      [closed, 'Listed 2', 'CLOSED', []],
      [open, 'Listed 1', 'OPEN', []],
      [draft, 'Listed 0', 'DRAFT', [{ title: 'Listed pitch' }]],
    ]);
    for (const [status, id] of [
      ['DRAFT', draft],
      ['OPEN', open],
      ['CLOSED', closed],
    ] as const) {
      const listed = dataOf(await gql(CompetitionsDocument, { status, first: 100 })).competitions;
      expect(listed[0]?.id).toBe(id);
      expect(listed.every((c) => c.status === status)).toBe(true);
      const times = listed.map((c) => Date.parse(c.createdAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    }

    await t.app.database.prisma.competition.createMany({
      data: Array.from({ length: 50 }, (_, i) => ({ title: `Bulk ${i}`, votingMethod: 'SIMPLE' as const })),
    });
    expect(dataOf(await gql(CompetitionsDocument, {})).competitions).toHaveLength(50);
    expect(dataOf(await gql(CompetitionsDocument, { first: 100 })).competitions.length).toBeGreaterThanOrEqual(53);
    for (const first of [0, 101, -1]) {
      const result = await gql(CompetitionsDocument, { first });
      expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors?.[0]?.extensions?.['field']).toBe('first');
    }
  });

  it("shows each tally entry's submission and the submission of a SIMPLE vote (none for a RANKED ballot)", async () => {
    const { competitionId, submissionIds } = await openCompetition(2);
    const [s0, s1] = submissionIds as [string, string];
    const voter = await tokenFor({ sub: 'titled-voter' });
    const input = { competitionId, submissionId: s1, idempotencyKey: 'titled' };
    const cast = dataOf(await gql(CastVoteOnSubmissionDocument, { input }, voter)).castVote.vote;
    expect(cast.submission).toEqual({ id: s1, title: 'Startup 1' });
    // An idempotent replay reports the same vote, submission included.
    expect(dataOf(await gql(CastVoteOnSubmissionDocument, { input }, voter)).castVote.vote).toEqual(cast);

    const { leaderboard } = dataOf(await gql(LeaderboardTitlesDocument, { competitionId }));
    expect(leaderboard).toEqual([
      { submissionId: s1, rank: 1, submission: { id: s1, competitionId, title: 'Startup 1' } },
      { submissionId: s0, rank: 2, submission: { id: s0, competitionId, title: 'Startup 0' } },
    ]);

    const ranked = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Ranked', votingMethod: 'RANKED' } }, admin),
    ).createCompetition;
    const a = dataOf(
      await gql(CreateSubmissionDocument, { input: { competitionId: ranked.id, title: 'A' } }, admin),
    ).createSubmission;
    dataOf(await gql(OpenCompetitionDocument, { id: ranked.id }, admin));
    const ballot = dataOf(
      await gql(CastVoteOnSubmissionDocument, { input: { competitionId: ranked.id, ranking: [a.id] } }, voter),
    );
    expect(ballot.castVote.vote.submission).toBeNull();
  });

  it.each<Transport>(['graphql-ws', 'sse', 'graphql-sse'])(
    'over %s, tells tallyUpdated watchers that the competition closed (every acknowledged vote in the final update), then completes',
    async (transport) => {
      const { competitionId, submissionIds } = await openCompetition(2);
      const feed = subscribe(transport, t.url, TallyUntilClosedDocument, { competitionId });
      try {
        const first = await feed.waitFor((r) => r.data !== undefined);
        expect(first.data?.tallyUpdated).toMatchObject({ status: 'OPEN', totalVotes: 0 });

        const tokens = await Promise.all(
          Array.from({ length: 30 }, (_, i) => tokenFor({ sub: `closing-${transport}-${i}` })),
        );
        const votes = tokens.map((token, i) =>
          gql(CastVoteDocument, { input: { competitionId, submissionId: submissionIds[i % 2]! } }, token),
        );
        await votes[0]; // the close races the other votes
        dataOf(await gql(CloseCompetitionDocument, { id: competitionId }, admin));
        const results = await Promise.all(votes);
        const acknowledged = results.filter((r) => !r.errors).length;
        expect(
          results
            .filter((r) => r.errors)
            .flatMap((r) => codesOf(r))
            .every((code) => code === 'VOTING_CLOSED'),
        ).toBe(true);

        await within(feed.ended, 10_000, 'the stream did not complete');
        const updates = feed.results.map((r) => r.data!.tallyUpdated);
        const final = updates.at(-1)!;
        expect(final).toMatchObject({ competitionId, status: 'CLOSED', totalVotes: acknowledged });
        expect(final.entries.map((e) => e.submission.title).sort()).toEqual(['Startup 0', 'Startup 1']);
        expect(updates.slice(0, -1).every((u) => u.status === 'OPEN')).toBe(true);
        expect(Object.fromEntries(await recount(competitionId))).toEqual(
          Object.fromEntries(final.entries.filter((e) => e.votes > 0).map((e) => [e.submissionId, e.votes])),
        );

        // A watcher arriving after the close gets the final standings and the end at once.
        const late = subscribe(transport, t.url, TallyUntilClosedDocument, { competitionId });
        try {
          await within(late.ended, 10_000, 'the late stream did not complete');
          expect(late.results.map((r) => r.data?.tallyUpdated)).toEqual([final]);
        } finally {
          await late.close();
        }
      } finally {
        await feed.close();
      }
    },
  );

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
