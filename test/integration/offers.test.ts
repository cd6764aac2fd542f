/**
 * Offers and the investment pool over HTTP (and SSE for the streams), on both backends: the
 * whole negotiation, who may do what, withdraw, expiry, concurrent accepts, and pledges that
 * never exceed the budget under concurrency. Sessions are inserted through Prisma (the sessions
 * module owns their API).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  InvestmentPoolDocument,
  InvestmentPoolUpdatedDocument,
  MakeOfferDocument,
  MeDocument,
  MyPledgesDocument,
  OfferUpdatedDocument,
  OffersDocument,
  PledgeDocument,
  RespondToOfferDocument,
  WithdrawOfferDocument,
  type MakeOfferInput,
  type OfferUpdatedSubscription,
} from '../generated/graphql.js';
import { useTestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe, type Feed } from '../support/clients.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';

interface OfferEventResult {
  data?: OfferUpdatedSubscription | null;
}

describe.each(backends)('offers on $name', (backend) => {
  const t = useTestApp(backend, { OFFER_MIN_EXPIRY_SECONDS: '1' });
  let admin: string;
  let judge: string;
  let judge2: string;
  let audience: string;
  let n = 0;
  const gql = t.gql;
  const reasonOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
    result.errors?.[0]?.extensions?.['reason'];
  const fieldOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
    result.errors?.[0]?.extensions?.['field'];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  beforeAll(async () => {
    [admin, judge, judge2, audience] = await Promise.all([
      tokenFor({ sub: 'offers-admin', name: 'Ada', role: 'ADMIN' }),
      tokenFor({ sub: 'judge-1', name: 'Mark', role: 'JUDGE' }),
      tokenFor({ sub: 'judge-2', name: 'Lori', role: 'JUDGE' }),
      tokenFor({ sub: 'viewer-1', name: 'Vic' }),
    ]);
  });

  /**
   * A competition with `submissions` founded submissions plus one warm-up submission, and a LIVE
   * session with all of them in its running order.
   */
  async function stage(submissions = 1, pledgeBudget = 1000) {
    n += 1;
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: `Shark night ${n}`, votingMethod: 'SIMPLE' } }, admin),
    );
    const founderIds: string[] = [];
    const founders: string[] = [];
    const submissionIds: string[] = [];
    for (let i = 0; i <= submissions; i += 1) {
      const founderId = `founder-${n}-${i}`;
      const token = await tokenFor({ sub: founderId, name: `Founder ${i}`, role: 'FOUNDER' });
      dataOf(await gql(MeDocument, {}, token)); // signs the founder in once
      const { createSubmission } = dataOf(
        await gql(
          CreateSubmissionDocument,
          { input: { competitionId: createCompetition.id, title: `Startup ${i}`, founderId } },
          admin,
        ),
      );
      founderIds.push(founderId);
      founders.push(token);
      submissionIds.push(createSubmission.id);
    }
    const session = await t.app.database.prisma.eventSession.create({
      data: {
        competitionId: createCompetition.id,
        submissionIds,
        presentationSeconds: 120,
        status: 'LIVE',
        pledgeBudget,
      },
    });
    return {
      sessionId: session.id,
      competitionId: createCompetition.id,
      submissionIds: submissionIds.slice(0, submissions),
      founders: founders.slice(0, submissions),
      founderIds: founderIds.slice(0, submissions),
      warmUpSubmissionId: submissionIds[submissions]!,
    };
  }

  const equity = (
    sessionId: string,
    submissionId: string,
    over: Partial<MakeOfferInput> = {},
  ): { input: MakeOfferInput } => ({
    input: { sessionId, submissionId, type: 'EQUITY', amount: 100_000, equityPercentage: 10, ...over },
  });

  /** An offerUpdated feed over SSE that is known to be live: warm-up offers until one arrives. */
  async function offerFeed(sessionId: string, warmUpSubmissionId: string): Promise<Feed<OfferUpdatedSubscription>> {
    const feed = subscribe('sse', t.url, OfferUpdatedDocument, { sessionId });
    const warmer = await tokenFor({ sub: `warm-up-judge-${sessionId}`, role: 'JUDGE' });
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const made = dataOf(await gql(MakeOfferDocument, equity(sessionId, warmUpSubmissionId), warmer)).makeOffer;
      dataOf(await gql(WithdrawOfferDocument, { offerId: made.id }, warmer));
      try {
        await feed.waitFor((r) => r.data?.offerUpdated.id === made.id, 300);
        return feed;
      } catch {
        // not live yet
      }
    }
    throw new Error('offerUpdated never became live');
  }
  const eventsOf = (feed: Feed<OfferUpdatedSubscription>, submissionId: string) =>
    feed.results
      .filter((r: OfferEventResult) => r.data?.offerUpdated.submissionId === submissionId)
      .map((r) => r.data!.offerUpdated);

  it('runs a whole negotiation: offer, counter, accept; every transition persisted and published in seq order', async () => {
    const { sessionId, submissionIds, founders, founderIds, warmUpSubmissionId } = await stage(1);
    const [submissionId] = submissionIds as [string];
    const [founder] = founders as [string];
    const feed = await offerFeed(sessionId, warmUpSubmissionId);
    try {
      const offer = dataOf(
        await gql(
          MakeOfferDocument,
          equity(sessionId, submissionId, { conditions: ['  board seat  ', 'monthly report'], expiresInSeconds: 600 }),
          judge,
        ),
      ).makeOffer;
      expect(offer).toMatchObject({
        sessionId,
        submissionId,
        judge: { id: 'judge-1', name: 'Mark' },
        author: { id: 'judge-1' },
        type: 'EQUITY',
        amount: 100_000,
        equityPercentage: 10,
        interestRatePercent: null,
        conditions: ['board seat', 'monthly report'],
        status: 'PENDING',
        counterOf: null,
        counter: null,
        respondedAt: null,
      });
      expect(Date.parse(offer.expiresAt!) - Date.parse(offer.createdAt)).toBe(600_000);

      const counter = dataOf(
        await gql(
          RespondToOfferDocument,
          { input: { offerId: offer.id, response: 'COUNTER', counterAmount: 150_000, counterEquityPercentage: 8 } },
          founder,
        ),
      ).respondToOffer;
      expect(counter).toMatchObject({
        status: 'PENDING',
        amount: 150_000,
        equityPercentage: 8,
        judge: { id: 'judge-1' },
        author: { id: founderIds[0] },
        conditions: ['board seat', 'monthly report'],
        counterOf: { id: offer.id, status: 'COUNTERED' },
      });
      expect(counter.seq).toBe(offer.seq! + 2);

      // The judge answers the counter; the founder cannot accept their own counter.
      expect(
        codesOf(await gql(RespondToOfferDocument, { input: { offerId: counter.id, response: 'ACCEPT' } }, founder)),
      ).toEqual(['FORBIDDEN']);
      const accepted = dataOf(
        await gql(RespondToOfferDocument, { input: { offerId: counter.id, response: 'ACCEPT' } }, judge),
      ).respondToOffer;
      expect(accepted).toMatchObject({ id: counter.id, status: 'ACCEPTED', seq: offer.seq! + 3 });
      expect(accepted.respondedAt).not.toBeNull();

      const { offers } = dataOf(await gql(OffersDocument, { submissionId }));
      expect(offers.map((o) => [o.id, o.status, o.seq])).toEqual([
        [counter.id, 'ACCEPTED', null],
        [offer.id, 'COUNTERED', null],
      ]);
      expect(offers[1]!.counter).toEqual({ id: counter.id, status: 'ACCEPTED' });

      const rows = await t.app.database.prisma.offer.findMany({
        where: { submissionId },
        orderBy: { createdAt: 'asc' },
      });
      expect(rows.map((r) => [r.id, r.status, r.authorId, r.judgeId, r.counterOfId])).toEqual([
        [offer.id, 'COUNTERED', 'judge-1', 'judge-1', null],
        [counter.id, 'ACCEPTED', founderIds[0], 'judge-1', offer.id],
      ]);

      await feed.waitFor((r) => r.data?.offerUpdated.status === 'ACCEPTED');
      const events = eventsOf(feed, submissionId);
      expect(events.map((e) => [e.id, e.status, e.seq])).toEqual([
        [offer.id, 'PENDING', offer.seq],
        [offer.id, 'COUNTERED', offer.seq! + 1],
        [counter.id, 'PENDING', offer.seq! + 2],
        [counter.id, 'ACCEPTED', offer.seq! + 3],
      ]);
      expect(events[2]!.counterOf).toEqual({ id: offer.id, status: 'COUNTERED' });

      // Settled: no more offers on this submission.
      const late = await gql(MakeOfferDocument, equity(sessionId, submissionId), judge2);
      expect(codesOf(late)).toEqual(['CONFLICT']);
      expect(reasonOf(late)).toBe('ALREADY_ACCEPTED');
    } finally {
      await feed.close();
    }
  });

  /** An offer with the contract's MakeOfferInput fields only (EQUITY's equityPercentage is one of them). */
  const contractOffer = (
    type: 'EQUITY' | 'LOAN' | 'ROYALTY',
    sessionId: string,
    submissionId: string,
    amount: number,
  ): { input: MakeOfferInput } => ({
    input: { sessionId, submissionId, type, amount, ...(type === 'EQUITY' && { equityPercentage: 10 }) },
  });

  it.each(['EQUITY', 'LOAN', 'ROYALTY'] as const)(
    'makes, counters, accepts and withdraws a %s offer with the contract fields alone',
    async (type) => {
      const { sessionId, submissionIds, founders } = await stage(2);
      const [s0, s1] = submissionIds as [string, string];
      const [founder0, founder1] = founders as [string, string];
      const unset = { interestRatePercent: null, termMonths: null, royaltyPercent: null };

      // make, withdraw
      const first = dataOf(await gql(MakeOfferDocument, contractOffer(type, sessionId, s0, 50_000), judge2)).makeOffer;
      expect(first).toMatchObject({
        type,
        amount: 50_000,
        status: 'PENDING',
        ...unset,
        equityPercentage: type === 'EQUITY' ? 10 : null,
      });
      expect(dataOf(await gql(WithdrawOfferDocument, { offerId: first.id }, judge2)).withdrawOffer.status).toBe(
        'WITHDRAWN',
      );

      // make, counter (counterAmount, and counterEquityPercentage for EQUITY), the judge accepts the counter
      const offer = dataOf(await gql(MakeOfferDocument, contractOffer(type, sessionId, s0, 100_000), judge)).makeOffer;
      const counterTerms = { counterAmount: 120_000, ...(type === 'EQUITY' && { counterEquityPercentage: 8 }) };
      const counter = dataOf(
        await gql(
          RespondToOfferDocument,
          { input: { offerId: offer.id, response: 'COUNTER', ...counterTerms } },
          founder0,
        ),
      ).respondToOffer;
      expect(counter).toMatchObject({
        type,
        amount: 120_000,
        status: 'PENDING',
        ...unset,
        counterOf: { id: offer.id, status: 'COUNTERED' },
      });
      const accepted = dataOf(
        await gql(RespondToOfferDocument, { input: { offerId: counter.id, response: 'ACCEPT' } }, judge),
      ).respondToOffer;
      expect(accepted).toMatchObject({ id: counter.id, status: 'ACCEPTED' });

      // make, the founder accepts
      const direct = dataOf(await gql(MakeOfferDocument, contractOffer(type, sessionId, s1, 70_000), judge)).makeOffer;
      const taken = dataOf(
        await gql(RespondToOfferDocument, { input: { offerId: direct.id, response: 'ACCEPT' } }, founder1),
      ).respondToOffer;
      expect(taken).toMatchObject({ id: direct.id, type, status: 'ACCEPTED', ...unset });
    },
  );

  it('lets only the right people act', async () => {
    const { sessionId, submissionIds, founders, founderIds } = await stage(2);
    const [s0, s1] = submissionIds as [string, string];
    const [founder0, founder1] = founders as [string, string];
    const founderJudge = await tokenFor({ sub: founderIds[0]!, role: 'JUDGE' });

    for (const [token, code] of [
      [undefined, 'UNAUTHENTICATED'],
      [audience, 'FORBIDDEN'],
      [founder0, 'FORBIDDEN'],
      [admin, 'FORBIDDEN'],
    ] as const) {
      const result = await gql(MakeOfferDocument, equity(sessionId, s0), token);
      expect(codesOf(result)).toEqual([code]);
      expect(result.data).toBeNull();
    }
    // A judge who founded the submission cannot make offers on it.
    expect(codesOf(await gql(MakeOfferDocument, equity(sessionId, s0), founderJudge))).toEqual(['FORBIDDEN']);

    const offer = dataOf(await gql(MakeOfferDocument, equity(sessionId, s0), judge)).makeOffer;
    const respond = (response: 'ACCEPT' | 'REJECT' | 'COUNTER', token?: string, extra = {}) =>
      gql(RespondToOfferDocument, { input: { offerId: offer.id, response, ...extra } }, token);
    expect(codesOf(await respond('ACCEPT'))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await respond('ACCEPT', audience))).toEqual(['FORBIDDEN']);
    expect(codesOf(await respond('ACCEPT', founder1))).toEqual(['FORBIDDEN']); // another submission's founder
    expect(codesOf(await respond('ACCEPT', judge))).toEqual(['FORBIDDEN']); // the judge who made it
    expect(codesOf(await respond('REJECT', judge2))).toEqual(['FORBIDDEN']);
    expect(codesOf(await gql(WithdrawOfferDocument, { offerId: offer.id }, founder0))).toEqual(['FORBIDDEN']);
    expect(codesOf(await gql(WithdrawOfferDocument, { offerId: offer.id }, judge2))).toEqual(['FORBIDDEN']);
    expect(codesOf(await gql(WithdrawOfferDocument, { offerId: 'no-such-offer' }, judge))).toEqual(['NOT_FOUND']);

    // One open offer per judge per submission.
    const twice = await gql(MakeOfferDocument, equity(sessionId, s0), judge);
    expect(codesOf(twice)).toEqual(['CONFLICT']);
    expect(reasonOf(twice)).toBe('NEGOTIATION_OPEN');

    // Counter fields only with COUNTER; a counter-offer cannot be countered.
    const stray = await respond('REJECT', founder0, { counterAmount: 5 });
    expect([codesOf(stray), fieldOf(stray)]).toEqual([['BAD_USER_INPUT'], 'input.counterAmount']);
    const noAmount = await respond('COUNTER', founder0, { counterEquityPercentage: 5 });
    expect([codesOf(noAmount), fieldOf(noAmount)]).toEqual([['BAD_USER_INPUT'], 'input.counterAmount']);
    const counter = dataOf(
      await respond('COUNTER', founder0, { counterAmount: 120_000, counterEquityPercentage: 9 }),
    ).respondToOffer;
    const again = await gql(
      RespondToOfferDocument,
      { input: { offerId: counter.id, response: 'COUNTER', counterAmount: 1, counterEquityPercentage: 1 } },
      judge,
    );
    expect([codesOf(again), fieldOf(again)]).toEqual([['BAD_USER_INPUT'], 'input.response']);
    expect(
      codesOf(await gql(RespondToOfferDocument, { input: { offerId: counter.id, response: 'REJECT' } }, judge2)),
    ).toEqual(['FORBIDDEN']);
    const rejected = dataOf(
      await gql(RespondToOfferDocument, { input: { offerId: counter.id, response: 'REJECT' } }, judge),
    ).respondToOffer;
    expect(rejected.status).toBe('REJECTED');
    // The countered original is no longer open: the judge may make a fresh offer.
    const countered = await respond('ACCEPT', founder0);
    expect([codesOf(countered), reasonOf(countered)]).toEqual([['CONFLICT'], 'OFFER_NOT_PENDING']);
    dataOf(await gql(MakeOfferDocument, equity(sessionId, s0, { amount: 130_000 }), judge));

    expect(codesOf(await gql(OffersDocument, { submissionId: 'nope' }))).toEqual(['NOT_FOUND']);
    expect(dataOf(await gql(OffersDocument, { submissionId: s1 })).offers).toEqual([]);
  });

  it('withdraws a PENDING offer only, once', async () => {
    const { sessionId, submissionIds, founders } = await stage(1);
    const offer = dataOf(await gql(MakeOfferDocument, equity(sessionId, submissionIds[0]!), judge)).makeOffer;
    const withdrawn = dataOf(await gql(WithdrawOfferDocument, { offerId: offer.id }, judge)).withdrawOffer;
    expect(withdrawn).toMatchObject({ id: offer.id, status: 'WITHDRAWN', seq: offer.seq! + 1 });
    for (const result of [
      await gql(WithdrawOfferDocument, { offerId: offer.id }, judge),
      await gql(RespondToOfferDocument, { input: { offerId: offer.id, response: 'ACCEPT' } }, founders[0]),
    ]) {
      expect(codesOf(result)).toEqual(['CONFLICT']);
      expect(result.errors?.[0]?.extensions).toMatchObject({
        reason: 'OFFER_NOT_PENDING',
        status: 'WITHDRAWN',
        retryable: false,
      });
    }
    expect((await t.app.database.prisma.offer.findUniqueOrThrow({ where: { id: offer.id } })).status).toBe('WITHDRAWN');
  });

  it.each([
    { name: 'zero amount', over: { amount: 0 }, field: 'input.amount' },
    { name: 'EQUITY without equity', over: { equityPercentage: null }, field: 'input.equityPercentage' },
    { name: 'equity over 100', over: { equityPercentage: 100.5 }, field: 'input.equityPercentage' },
    { name: 'LOAN terms on EQUITY', over: { termMonths: 12 }, field: 'input.termMonths' },
    {
      name: 'LOAN term of 0 months',
      over: { type: 'LOAN', equityPercentage: null, termMonths: 0 },
      field: 'input.termMonths',
    },
    { name: 'ROYALTY with equity', over: { type: 'ROYALTY', royaltyPercent: 3 }, field: 'input.equityPercentage' },
    { name: 'blank condition', over: { conditions: ['ok', ' '] }, field: 'input.conditions[1]' },
    { name: 'expiry 0', over: { expiresInSeconds: 0 }, field: 'input.expiresInSeconds' },
    { name: 'expiry over a week', over: { expiresInSeconds: 604_801 }, field: 'input.expiresInSeconds' },
    { name: 'not in the running order', over: { submissionId: 'elsewhere' }, field: 'input.submissionId' },
  ] as { name: string; over: Partial<MakeOfferInput>; field: string }[])(
    'rejects $name naming $field',
    async ({ over, field }) => {
      const { sessionId, submissionIds } = await stage(1);
      const result = await gql(MakeOfferDocument, equity(sessionId, submissionIds[0]!, over), judge);
      expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
      expect(fieldOf(result)).toBe(field);
      expect(await t.app.database.prisma.offer.count({ where: { sessionId } })).toBe(0);
    },
  );

  it('refuses offers in unknown or ENDED sessions, and accepts LOAN and ROYALTY terms', async () => {
    const { sessionId, submissionIds } = await stage(1);
    expect(codesOf(await gql(MakeOfferDocument, equity('no-session', submissionIds[0]!), judge))).toEqual([
      'NOT_FOUND',
    ]);
    const loan = dataOf(
      await gql(
        MakeOfferDocument,
        equity(sessionId, submissionIds[0]!, {
          type: 'LOAN',
          equityPercentage: null,
          interestRatePercent: 6.5,
          termMonths: 36,
        }),
        judge,
      ),
    ).makeOffer;
    expect(loan).toMatchObject({
      type: 'LOAN',
      interestRatePercent: 6.5,
      termMonths: 36,
      equityPercentage: null,
      royaltyPercent: null,
    });
    const royalty = dataOf(
      await gql(
        MakeOfferDocument,
        equity(sessionId, submissionIds[0]!, { type: 'ROYALTY', equityPercentage: null, royaltyPercent: 4 }),
        judge2,
      ),
    ).makeOffer;
    expect(royalty).toMatchObject({ type: 'ROYALTY', royaltyPercent: 4 });

    await t.app.database.prisma.eventSession.update({ where: { id: sessionId }, data: { status: 'ENDED' } });
    const ended = await gql(
      MakeOfferDocument,
      equity(sessionId, submissionIds[0]!),
      await tokenFor({ sub: 'judge-3', role: 'JUDGE' }),
    );
    expect([codesOf(ended), reasonOf(ended)]).toEqual([['CONFLICT'], 'SESSION_ENDED']);
    // Pending offers can still be answered after the session ended.
    const founder = await tokenFor({
      sub: (await t.app.database.prisma.submission.findUniqueOrThrow({ where: { id: submissionIds[0]! } })).founderId!,
    });
    expect(
      dataOf(await gql(RespondToOfferDocument, { input: { offerId: loan.id, response: 'REJECT' } }, founder))
        .respondToOffer.status,
    ).toBe('REJECTED');
  });

  it('expires offers: EXPIRED at once on reads, persisted and published once by the sweeper', async () => {
    const { sessionId, submissionIds, founders, warmUpSubmissionId } = await stage(1);
    const [submissionId] = submissionIds as [string];
    const feed = await offerFeed(sessionId, warmUpSubmissionId);
    try {
      const offer = dataOf(
        await gql(MakeOfferDocument, equity(sessionId, submissionId, { expiresInSeconds: 1 }), judge),
      ).makeOffer;
      expect(offer.status).toBe('PENDING');
      await sleep(Math.max(0, Date.parse(offer.expiresAt!) - Date.now()) + 20);

      expect(dataOf(await gql(OffersDocument, { submissionId })).offers[0]!.status).toBe('EXPIRED');
      const late = await gql(RespondToOfferDocument, { input: { offerId: offer.id, response: 'ACCEPT' } }, founders[0]);
      expect(codesOf(late)).toEqual(['CONFLICT']);
      expect(late.errors?.[0]?.extensions).toMatchObject({ status: 'EXPIRED' });
      // An expired offer does not block a new one from the same judge.
      const fresh = dataOf(
        await gql(MakeOfferDocument, equity(sessionId, submissionId, { amount: 90_000 }), judge),
      ).makeOffer;

      const expired = await feed.waitFor(
        (r) => r.data?.offerUpdated.id === offer.id && r.data.offerUpdated.status === 'EXPIRED',
        5_000,
      );
      // The sweeper may persist it before or after `fresh` was made (its interval vs a loaded machine).
      expect(expired.data!.offerUpdated.seq).toBeGreaterThan(offer.seq!);
      expect(expired.data!.offerUpdated.seq).not.toBe(fresh.seq);
      expect((await t.app.database.prisma.offer.findUniqueOrThrow({ where: { id: offer.id } })).status).toBe('EXPIRED');
      await sleep(1_500); // another sweep or two: no second EXPIRED event
      expect(
        eventsOf(feed, submissionId)
          .filter((e) => e.id === offer.id)
          .map((e) => e.status),
      ).toEqual(['PENDING', 'EXPIRED']);
      const seqs = feed.results.map((r: OfferEventResult) => r.data!.offerUpdated.seq!);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    } finally {
      await feed.close();
    }
  });

  it('resolves 20 concurrent ACCEPTs on two offers of one submission to exactly one ACCEPTED', async () => {
    const { sessionId, submissionIds, founders } = await stage(1);
    const [submissionId] = submissionIds as [string];
    const a = dataOf(await gql(MakeOfferDocument, equity(sessionId, submissionId), judge)).makeOffer;
    const b = dataOf(
      await gql(MakeOfferDocument, equity(sessionId, submissionId, { amount: 200_000 }), judge2),
    ).makeOffer;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        gql(RespondToOfferDocument, { input: { offerId: i % 2 === 0 ? a.id : b.id, response: 'ACCEPT' } }, founders[0]),
      ),
    );
    const winners = results.filter((r) => !r.errors);
    expect(winners).toHaveLength(1);
    const losers = results.filter((r) => r.errors);
    expect(losers.map((r) => codesOf(r)[0])).toEqual(Array(19).fill('CONFLICT'));
    for (const loser of losers) expect(['ALREADY_ACCEPTED', 'OFFER_NOT_PENDING']).toContain(reasonOf(loser));

    const winnerId = winners[0]!.data!.respondToOffer.id;
    const rows = await t.app.database.prisma.offer.findMany({ where: { submissionId } });
    expect(rows.filter((r) => r.status === 'ACCEPTED').map((r) => r.id)).toEqual([winnerId]);
    // Accepting settles the submission: the other pending offer was rejected with it.
    expect(rows.find((r) => r.id !== winnerId)?.status).toBe('REJECTED');
  });

  it('keeps pledges within the budget, sets rather than adds, and streams pool totals', async () => {
    const { sessionId, submissionIds, founders } = await stage(3, 1000);
    const [s0, s1, s2] = submissionIds as [string, string, string];
    const pledge = (submissionId: string, amount: number, token: string | null = audience) =>
      gql(PledgeDocument, { input: { sessionId, submissionId, amount } }, token ?? undefined);
    const feed = subscribe('sse', t.url, InvestmentPoolUpdatedDocument, { sessionId });
    try {
      const first = await feed.waitFor((r) => r.data !== undefined);
      expect(first.data!.investmentPoolUpdated).toMatchObject({ totalAmount: 0, backers: 0, budgetPerBacker: 1000 });
      expect(first.data!.investmentPoolUpdated.entries.map((e) => [e.submissionId, e.amount])).toEqual([
        [s0, 0],
        [s1, 0],
        [s2, 0],
        [expect.any(String), 0], // the warm-up submission is in the running order too
      ]);

      expect(dataOf(await pledge(s0, 600)).pledge).toMatchObject({ amount: 600, budget: 1000, remaining: 400 });
      const over = await pledge(s1, 500);
      expect(codesOf(over)).toEqual(['BUDGET_EXCEEDED']);
      expect(over.errors?.[0]?.extensions).toMatchObject({ remaining: 400, budget: 1000, retryable: false });
      expect(dataOf(await pledge(s0, 100)).pledge.remaining).toBe(900); // sets, not adds
      const both = dataOf(await pledge(s1, 900)).pledge;
      expect(both.remaining).toBe(0);
      expect(both.pool.entries.slice(0, 2).map((e) => [e.amount, e.backers])).toEqual([
        [100, 1],
        [900, 1],
      ]);
      expect(dataOf(await pledge(s1, 0)).pledge.remaining).toBe(900); // 0 removes

      expect(codesOf(await pledge(s0, 10, null))).toEqual(['UNAUTHENTICATED']);
      expect(codesOf(await pledge(s0, 10, founders[0]))).toEqual(['FORBIDDEN']); // backing one's own submission
      const negative = await pledge(s0, -1);
      expect([codesOf(negative), fieldOf(negative)]).toEqual([['BAD_USER_INPUT'], 'input.amount']);
      expect(codesOf(await pledge('elsewhere', 10))).toEqual(['BAD_USER_INPUT']);

      // One user's concurrent pledges never overspend: 30 racing requests of 300..700.
      const racer = await tokenFor({ sub: `racer-${sessionId}` });
      const racing = await Promise.all(
        Array.from({ length: 30 }, (_, i) => pledge([s0, s1, s2][i % 3]!, 300 + (i % 5) * 100, racer)),
      );
      expect(racing.some((r) => codesOf(r)[0] === 'BUDGET_EXCEEDED')).toBe(true);
      for (const r of racing) if (r.errors) expect(codesOf(r)).toEqual(['BUDGET_EXCEEDED']);
      const mine = await t.app.database.prisma.pledge.aggregate({
        where: { sessionId, userId: `racer-${sessionId}` },
        _sum: { amount: true },
      });
      expect(mine._sum.amount!).toBeLessThanOrEqual(1000);
      expect(mine._sum.amount!).toBeGreaterThan(0);
      const { myPledges } = dataOf(await gql(MyPledgesDocument, { sessionId }, racer));
      expect(myPledges.pledged).toBe(mine._sum.amount);
      expect(myPledges.remaining).toBe(1000 - mine._sum.amount!);

      // Many users at once: the pool equals the recount, and the stream ends on it.
      const crowd = await Promise.all(
        Array.from({ length: 25 }, (_, i) => tokenFor({ sub: `backer-${sessionId}-${i}` })),
      );
      const crowdResults = await Promise.all(
        crowd.map((token, i) => pledge([s0, s1, s2][i % 3]!, 10 * (i + 1), token)),
      );
      expect(crowdResults.filter((r) => r.errors)).toEqual([]);

      const sums = await t.app.database.prisma.pledge.groupBy({
        by: ['submissionId'],
        where: { sessionId },
        _sum: { amount: true },
        _count: { _all: true },
      });
      const { investmentPool } = dataOf(await gql(InvestmentPoolDocument, { sessionId }));
      for (const entry of investmentPool.entries) {
        const sum = sums.find((s) => s.submissionId === entry.submissionId);
        expect([entry.amount, entry.backers]).toEqual([sum?._sum.amount ?? 0, sum?._count._all ?? 0]);
      }
      expect(investmentPool.totalAmount).toBe(sums.reduce((total, s) => total + (s._sum.amount ?? 0), 0));
      expect(investmentPool.backers).toBe(27); // audience, racer, 25 backers

      const last = await feed.waitFor((r) => r.data?.investmentPoolUpdated.seq === investmentPool.seq);
      expect(last.data!.investmentPoolUpdated.entries).toEqual(investmentPool.entries);
      const seqs = feed.results.map((r) => r.data!.investmentPoolUpdated.seq);
      for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);

      await t.app.database.prisma.eventSession.update({ where: { id: sessionId }, data: { status: 'ENDED' } });
      const closed = await pledge(s0, 5);
      expect([codesOf(closed), reasonOf(closed)]).toEqual([['CONFLICT'], 'SESSION_ENDED']);
    } finally {
      await feed.close();
    }
  });
});
