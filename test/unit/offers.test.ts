/** Offers: the transition table, term validation, effective expiry, seq ordering and pool totals. */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { OfferStatus, OfferType } from '../../src/generated/prisma/enums.js';
import { inSeqOrder } from '../../src/realtime/stream.js';
import {
  MAKE_OFFER_FIELDS,
  decideTransition,
  effectiveStatus,
  rejectCounterFields,
  validateCounterTerms,
  validateTerms,
  type OfferAction,
  type OfferTerms,
  type RawTerms,
  type TransitionFacts,
} from '../../src/modules/offers/offers.rules.js';
import { buildPool } from '../../src/modules/pool/pool.service.js';
import { validatePledgeAmount } from '../../src/modules/pool/pool.rules.js';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';
import type { RealtimeEvent } from '../../src/realtime/topics.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const LATER = '2026-03-01T12:05:00.000Z';
const EARLIER = '2026-03-01T11:59:59.000Z';

/** The error code (and reason) a call throws, or its result. */
function outcome(fn: () => unknown): string {
  try {
    return String(fn());
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    const reason = error.details['reason'] ?? error.details['field'];
    return reason ? `${error.code}:${reason as string}` : error.code;
  }
}

describe('decideTransition', () => {
  // j = the judge, f = the submission's founder, x = anyone else.
  const original = (over: Partial<TransitionFacts> = {}): TransitionFacts => ({
    id: 'o1',
    status: OfferStatus.PENDING,
    expiresAt: LATER,
    authorId: 'j',
    judgeId: 'j',
    counterOfId: null,
    submissionId: 's1',
    founderId: 'f',
    acceptedOfferId: null,
    ...over,
  });
  const counter = (over: Partial<TransitionFacts> = {}): TransitionFacts =>
    original({ id: 'o2', authorId: 'f', counterOfId: 'o1', ...over });

  it.each<[string, OfferAction, string, string, TransitionFacts]>([
    // a judge's offer: the founder answers, the judge may withdraw
    ['offer', 'ACCEPT', 'f', 'ACCEPTED', original()],
    ['offer', 'REJECT', 'f', 'REJECTED', original()],
    ['offer', 'COUNTER', 'f', 'COUNTERED', original()],
    ['offer', 'WITHDRAW', 'j', 'WITHDRAWN', original()],
    ['offer', 'ACCEPT', 'f', 'ACCEPTED', original({ expiresAt: null })],
    ['offer', 'ACCEPT', 'j', 'FORBIDDEN', original()],
    ['offer', 'REJECT', 'x', 'FORBIDDEN', original()],
    ['offer', 'COUNTER', 'j', 'FORBIDDEN', original()],
    ['offer', 'WITHDRAW', 'f', 'FORBIDDEN', original()],
    ['offer', 'WITHDRAW', 'x', 'FORBIDDEN', original()],
    ['offer without founder', 'ACCEPT', 'f', 'FORBIDDEN', original({ founderId: null })],
    // the founder's counter-offer: the judge answers (no counter of a counter), the founder may withdraw
    ['counter', 'ACCEPT', 'j', 'ACCEPTED', counter()],
    ['counter', 'REJECT', 'j', 'REJECTED', counter()],
    ['counter', 'COUNTER', 'j', 'BAD_USER_INPUT:input.response', counter()],
    ['counter', 'WITHDRAW', 'f', 'WITHDRAWN', counter()],
    ['counter', 'ACCEPT', 'f', 'FORBIDDEN', counter()],
    ['counter', 'REJECT', 'x', 'FORBIDDEN', counter()],
    ['counter', 'WITHDRAW', 'j', 'FORBIDDEN', counter()],
    // expiry: at or past expiresAt it is EXPIRED whatever the stored status says
    ['expired offer', 'ACCEPT', 'f', 'CONFLICT:OFFER_EXPIRED', original({ expiresAt: EARLIER })],
    ['expired offer', 'REJECT', 'f', 'CONFLICT:OFFER_EXPIRED', original({ expiresAt: NOW.toISOString() })],
    ['expired offer', 'WITHDRAW', 'j', 'CONFLICT:OFFER_EXPIRED', original({ expiresAt: EARLIER })],
    ['expired counter', 'ACCEPT', 'j', 'CONFLICT:OFFER_EXPIRED', counter({ expiresAt: EARLIER })],
    // permission is checked before state: strangers learn nothing from the error
    ['expired offer', 'ACCEPT', 'x', 'FORBIDDEN', original({ expiresAt: EARLIER })],
    ['accepted offer', 'WITHDRAW', 'x', 'FORBIDDEN', original({ status: OfferStatus.ACCEPTED })],
    // the submission is settled
    ['offer', 'ACCEPT', 'f', 'CONFLICT:ALREADY_ACCEPTED', original({ acceptedOfferId: 'o9' })],
    ['counter', 'ACCEPT', 'j', 'CONFLICT:ALREADY_ACCEPTED', counter({ acceptedOfferId: 'o9' })],
  ])('%s × %s by %s → %s', (_kind, action, actor, expected, facts) => {
    expect(outcome(() => decideTransition(facts, action, actor, NOW))).toBe(expected);
  });

  const settled = [
    OfferStatus.ACCEPTED,
    OfferStatus.REJECTED,
    OfferStatus.COUNTERED,
    OfferStatus.WITHDRAWN,
    OfferStatus.EXPIRED,
  ];
  const rightful: [OfferAction, string][] = [
    ['ACCEPT', 'f'],
    ['REJECT', 'f'],
    ['COUNTER', 'f'],
    ['WITHDRAW', 'j'],
  ];
  it.each(settled.flatMap((status) => rightful.map(([action, actor]) => ({ status, action, actor }))))(
    '$status × $action by the rightful actor → CONFLICT:OFFER_NOT_PENDING',
    ({ status, action, actor }) => {
      expect(outcome(() => decideTransition(original({ status }), action, actor, NOW))).toBe(
        'CONFLICT:OFFER_NOT_PENDING',
      );
    },
  );
});

describe('effectiveStatus', () => {
  it.each([
    [OfferStatus.PENDING, LATER, OfferStatus.PENDING],
    [OfferStatus.PENDING, null, OfferStatus.PENDING],
    [OfferStatus.PENDING, NOW.toISOString(), OfferStatus.EXPIRED],
    [OfferStatus.PENDING, EARLIER, OfferStatus.EXPIRED],
    [OfferStatus.ACCEPTED, EARLIER, OfferStatus.ACCEPTED],
    [OfferStatus.WITHDRAWN, EARLIER, OfferStatus.WITHDRAWN],
  ])('%s expiring %s reads %s', (status, expiresAt, expected) => {
    expect(effectiveStatus(status, expiresAt, NOW)).toBe(expected);
  });
});

describe('validateTerms', () => {
  const opts = { minExpirySeconds: 10 };
  const check = (type: OfferType, raw: RawTerms) =>
    outcome(() => JSON.stringify(validateTerms(type, raw, MAKE_OFFER_FIELDS, opts)));

  it('keeps only the terms of the type and trims conditions', () => {
    expect(
      validateTerms(
        OfferType.EQUITY,
        { amount: 100_000, equityPercentage: 12.5, conditions: ['  board seat '] },
        MAKE_OFFER_FIELDS,
        opts,
      ),
    ).toEqual({
      type: 'EQUITY',
      amount: 100_000,
      equityPercentage: 12.5,
      interestRatePercent: null,
      termMonths: null,
      royaltyPercent: null,
      conditions: ['board seat'],
      expiresInSeconds: null,
    });
    expect(
      validateTerms(
        OfferType.LOAN,
        { amount: 5, interestRatePercent: 0, termMonths: 600, expiresInSeconds: 10 },
        MAKE_OFFER_FIELDS,
        opts,
      ),
    ).toMatchObject({
      interestRatePercent: 0,
      termMonths: 600,
      expiresInSeconds: 10,
    });
    expect(
      validateTerms(
        OfferType.ROYALTY,
        { amount: 1, royaltyPercent: 100, expiresInSeconds: 604_800 },
        MAKE_OFFER_FIELDS,
        opts,
      ),
    ).toMatchObject({
      royaltyPercent: 100,
      expiresInSeconds: 604_800,
    });
  });

  it.each<[string, OfferType, RawTerms, Partial<OfferTerms>]>([
    ['LOAN without terms', 'LOAN', { amount: 10 }, { interestRatePercent: null, termMonths: null }],
    [
      'LOAN with a rate only',
      'LOAN',
      { amount: 10, interestRatePercent: 5 },
      { interestRatePercent: 5, termMonths: null },
    ],
    ['LOAN with a term only', 'LOAN', { amount: 10, termMonths: 12 }, { interestRatePercent: null, termMonths: 12 }],
    ['ROYALTY without a percentage', 'ROYALTY', { amount: 10, royaltyPercent: null }, { royaltyPercent: null }],
  ])('leaves unset %s terms to be agreed (null)', (_name, type, raw, expected) => {
    expect(validateTerms(type, raw, MAKE_OFFER_FIELDS, opts)).toMatchObject({
      type,
      amount: 10,
      equityPercentage: null,
      ...expected,
    });
  });

  it.each<[string, OfferType, RawTerms, string]>([
    ['zero amount', 'EQUITY', { amount: 0, equityPercentage: 10 }, 'input.amount'],
    ['negative amount', 'EQUITY', { amount: -5, equityPercentage: 10 }, 'input.amount'],
    ['infinite amount', 'EQUITY', { amount: Infinity, equityPercentage: 10 }, 'input.amount'],
    ['NaN amount', 'LOAN', { amount: NaN, interestRatePercent: 5, termMonths: 12 }, 'input.amount'],
    ['huge amount', 'ROYALTY', { amount: 1e13, royaltyPercent: 5 }, 'input.amount'],
    ['EQUITY without equity', 'EQUITY', { amount: 10 }, 'input.equityPercentage'],
    ['EQUITY 0%', 'EQUITY', { amount: 10, equityPercentage: 0 }, 'input.equityPercentage'],
    ['EQUITY over 100%', 'EQUITY', { amount: 10, equityPercentage: 100.01 }, 'input.equityPercentage'],
    ['EQUITY with royalty', 'EQUITY', { amount: 10, equityPercentage: 10, royaltyPercent: 2 }, 'input.royaltyPercent'],
    ['EQUITY with a term', 'EQUITY', { amount: 10, equityPercentage: 10, termMonths: 2 }, 'input.termMonths'],
    [
      'LOAN negative rate',
      'LOAN',
      { amount: 10, interestRatePercent: -1, termMonths: 12 },
      'input.interestRatePercent',
    ],
    [
      'LOAN rate over 100',
      'LOAN',
      { amount: 10, interestRatePercent: 101, termMonths: 12 },
      'input.interestRatePercent',
    ],
    ['LOAN term 0', 'LOAN', { amount: 10, interestRatePercent: 5, termMonths: 0 }, 'input.termMonths'],
    ['LOAN term 601', 'LOAN', { amount: 10, interestRatePercent: 5, termMonths: 601 }, 'input.termMonths'],
    [
      'LOAN with equity',
      'LOAN',
      { amount: 10, interestRatePercent: 5, termMonths: 12, equityPercentage: 5 },
      'input.equityPercentage',
    ],
    ['ROYALTY over 100%', 'ROYALTY', { amount: 10, royaltyPercent: 100.5 }, 'input.royaltyPercent'],
    ['LOAN fractional term', 'LOAN', { amount: 10, termMonths: 1.5 }, 'input.termMonths'],
    ['ROYALTY 0%', 'ROYALTY', { amount: 10, royaltyPercent: 0 }, 'input.royaltyPercent'],
    [
      'ROYALTY with interest',
      'ROYALTY',
      { amount: 10, royaltyPercent: 3, interestRatePercent: 1 },
      'input.interestRatePercent',
    ],
    [
      '21 conditions',
      'EQUITY',
      { amount: 10, equityPercentage: 5, conditions: Array.from({ length: 21 }, () => 'c') },
      'input.conditions',
    ],
    [
      'blank condition',
      'EQUITY',
      { amount: 10, equityPercentage: 5, conditions: ['ok', '   '] },
      'input.conditions[1]',
    ],
    [
      'long condition',
      'EQUITY',
      { amount: 10, equityPercentage: 5, conditions: ['x'.repeat(501)] },
      'input.conditions[0]',
    ],
    [
      'expiry under the minimum',
      'EQUITY',
      { amount: 10, equityPercentage: 5, expiresInSeconds: 9 },
      'input.expiresInSeconds',
    ],
    [
      'expiry over a week',
      'EQUITY',
      { amount: 10, equityPercentage: 5, expiresInSeconds: 604_801 },
      'input.expiresInSeconds',
    ],
  ])('rejects %s naming the field', (_name, type, raw, field) => {
    expect(check(type, raw)).toBe(`BAD_USER_INPUT:${field}`);
  });

  it('accepts 20 conditions of 500 characters', () => {
    const conditions = Array.from({ length: 20 }, () => 'y'.repeat(500));
    expect(
      validateTerms(OfferType.EQUITY, { amount: 1, equityPercentage: 1, conditions }, MAKE_OFFER_FIELDS, opts)
        .conditions,
    ).toHaveLength(20);
  });

  it('follows the configured minimum expiry', () => {
    expect(check(OfferType.EQUITY, { amount: 1, equityPercentage: 1, expiresInSeconds: 1 })).toBe(
      'BAD_USER_INPUT:input.expiresInSeconds',
    );
    expect(
      validateTerms(OfferType.EQUITY, { amount: 1, equityPercentage: 1, expiresInSeconds: 1 }, MAKE_OFFER_FIELDS, {
        minExpirySeconds: 1,
      }).expiresInSeconds,
    ).toBe(1);
  });
});

describe('counter-offer terms', () => {
  const opts = { minExpirySeconds: 10 };
  const base = {
    interestRatePercent: null,
    termMonths: null,
    royaltyPercent: null,
    conditions: ['c1'],
    createdAt: new Date(NOW),
    expiresAt: null,
  };

  it('needs counterAmount, and counterEquityPercentage on EQUITY', () => {
    const equity = { ...base, type: OfferType.EQUITY };
    expect(outcome(() => validateCounterTerms(equity, { counterEquityPercentage: 5 }, opts))).toBe(
      'BAD_USER_INPUT:input.counterAmount',
    );
    expect(outcome(() => validateCounterTerms(equity, { counterAmount: 5 }, opts))).toBe(
      'BAD_USER_INPUT:input.counterEquityPercentage',
    );
    expect(validateCounterTerms(equity, { counterAmount: 5, counterEquityPercentage: 20 }, opts)).toMatchObject({
      type: 'EQUITY',
      amount: 5,
      equityPercentage: 20,
      conditions: ['c1'],
      expiresInSeconds: null,
    });
  });

  it("defaults LOAN/ROYALTY terms and the expiry window to the original's, rejects foreign terms", () => {
    const loan = {
      ...base,
      type: OfferType.LOAN,
      interestRatePercent: 8,
      termMonths: 24,
      expiresAt: new Date(NOW.getTime() + 120_000),
    };
    expect(
      validateCounterTerms(loan, { counterAmount: 9, counterTermMonths: 36, counterConditions: [] }, opts),
    ).toMatchObject({
      interestRatePercent: 8,
      termMonths: 36,
      conditions: [],
      expiresInSeconds: 120,
    });
    expect(outcome(() => validateCounterTerms(loan, { counterAmount: 9, counterEquityPercentage: 3 }, opts))).toBe(
      'BAD_USER_INPUT:input.counterEquityPercentage',
    );
    const royalty = { ...base, type: OfferType.ROYALTY, royaltyPercent: 4 };
    expect(validateCounterTerms(royalty, { counterAmount: 9 }, opts).royaltyPercent).toBe(4);
    // Terms the original left to be agreed stay so, unless the counter names them.
    const open = { ...base, type: OfferType.LOAN };
    expect(validateCounterTerms(open, { counterAmount: 9 }, opts)).toMatchObject({
      amount: 9,
      interestRatePercent: null,
      termMonths: null,
    });
    expect(validateCounterTerms(open, { counterAmount: 9, counterInterestRatePercent: 3 }, opts)).toMatchObject({
      interestRatePercent: 3,
      termMonths: null,
    });
    expect(outcome(() => validateCounterTerms(open, { counterAmount: 9, counterTermMonths: 0 }, opts))).toBe(
      'BAD_USER_INPUT:input.counterTermMonths',
    );
    expect(outcome(() => validateCounterTerms(royalty, { counterAmount: 9, counterRoyaltyPercent: 0 }, opts))).toBe(
      'BAD_USER_INPUT:input.counterRoyaltyPercent',
    );
  });

  it('refuses counter fields on ACCEPT and REJECT', () => {
    expect(outcome(() => rejectCounterFields('ACCEPT', { counterAmount: 1 }))).toBe(
      'BAD_USER_INPUT:input.counterAmount',
    );
    expect(outcome(() => rejectCounterFields('REJECT', { counterConditions: [] }))).toBe(
      'BAD_USER_INPUT:input.counterConditions',
    );
    expect(outcome(() => rejectCounterFields('COUNTER', { counterAmount: 1 }))).toBe('undefined');
    expect(outcome(() => rejectCounterFields('ACCEPT', { counterAmount: null }))).toBe('undefined');
  });
});

describe('pledges', () => {
  it.each([
    [0, '0'],
    [250, '250'],
    [-1, 'BAD_USER_INPUT:input.amount'],
    [1.5, 'BAD_USER_INPUT:input.amount'],
  ])('amount %s → %s', (amount, expected) => {
    expect(outcome(() => validatePledgeAmount(amount))).toBe(expected);
  });

  it('lists the running order with zeros, then other pledged submissions, and totals them', () => {
    const pool = buildPool(
      'sess',
      1000,
      ['b', 'a', 'c'],
      [
        { submissionId: 'a', amount: 300, backers: 2 },
        { submissionId: 'z', amount: 50, backers: 1 },
        { submissionId: 'b', amount: 100, backers: 1 },
      ],
      3,
    );
    expect(pool).toEqual({
      sessionId: 'sess',
      budgetPerBacker: 1000,
      totalAmount: 450,
      backers: 3,
      entries: [
        { submissionId: 'b', amount: 100, backers: 1 },
        { submissionId: 'a', amount: 300, backers: 2 },
        { submissionId: 'c', amount: 0, backers: 0 },
        { submissionId: 'z', amount: 50, backers: 1 },
      ],
    });
  });
});

describe('inSeqOrder', () => {
  function setup() {
    const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
    const publish = (seq: number) =>
      bus.publish('offers', 's', { topic: 'offers:s', seq, publishedAt: '', data: {} } as RealtimeEvent<never>);
    return { bus, publish };
  }
  const seqOf = async (it: AsyncIterator<{ seq: number }>) =>
    ((await it.next()).value as { seq: number } | undefined)?.seq;

  it('delivers out-of-order arrivals in seq order, dropping old and duplicate seqs', async () => {
    const { bus, publish } = setup();
    const stream = inSeqOrder(bus.subscribe('offers', 's'), { startAfter: async () => 10, gapWaitMs: 5_000 });
    for (const seq of [9, 10, 13, 12, 11, 12, 14]) publish(seq);
    expect([await seqOf(stream), await seqOf(stream), await seqOf(stream), await seqOf(stream)]).toEqual([
      11, 12, 13, 14,
    ]);
    await stream.return!();
    expect(bus.size()).toBe(0);
  });

  it('moves past a seq that never arrives after gapTimeoutMs', async () => {
    const { bus, publish } = setup();
    const stream = inSeqOrder(bus.subscribe('offers', 's'), { startAfter: async () => 0, gapWaitMs: 50 });
    publish(1);
    publish(3);
    expect(await seqOf(stream)).toBe(1);
    const started = Date.now();
    expect(await seqOf(stream)).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    publish(2); // too late: older than what was delivered
    publish(4);
    expect(await seqOf(stream)).toBe(4);
    publish(6); // 5 never comes: after the gap, 6 (never the stale 2)
    expect(await seqOf(stream)).toBe(6);
    await stream.return!();
  });

  it('return() releases a pending next() at once and closes the topic subscription', async () => {
    const { bus } = setup();
    const stream = inSeqOrder(bus.subscribe('offers', 's'), { startAfter: async () => 0, gapWaitMs: 50 });
    const pending = stream.next();
    expect(bus.size()).toBe(1);
    await stream.return!();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    expect(bus.size()).toBe(0);
  });
});
