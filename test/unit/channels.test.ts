import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import type { Viewer } from '../../src/guards/auth.js';
import type { OfferView } from '../../src/modules/offers/offers.events.js';
import { milestoneOf, offerActivity } from '../../src/modules/channels/channels.triggers.js';
import { createDomainEvents, type Dispatch } from '../../src/domain-events.js';
import type { Outbox } from '../../src/outbox.js';
import type { TallyEvent } from '../../src/modules/voting/voting.events.js';
import {
  assertApiCanPublish,
  assertCanRead,
  missedEvents,
  pageSize,
  validateAfterSeq,
  validateChannel,
  validateData,
  validateType,
} from '../../src/modules/channels/channels.rules.js';

/** Unit tests dispatch by hand: an outbox whose every use is a test failure. */
function noOutbox(): Outbox {
  const unused = () => {
    throw new Error('no outbox in unit tests');
  };
  return { record: unused, committed: unused, start: unused, sweep: unused, idle: unused, close: unused };
}

const codeOf = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).code;
  }
};

describe('channel names', () => {
  it.each([
    ['activity:0b7f1f0e-2c1a-4c55-9a55-1f2a3b4c5d6e', true],
    ['a', true],
    ['x'.repeat(100), true],
    ['app:news_feed-2', true],
    ['', false],
    ['x'.repeat(101), false],
    ['Activity:1', false],
    ['with space', false],
    ['dots.not.allowed', false],
    ['slash/no', false],
    ['émoji', false],
    ['tab\t', false],
  ])('%j valid: %s', (name, valid) => {
    expect(codeOf(() => validateChannel(name))).toBe(valid ? null : 'BAD_USER_INPUT');
  });

  it('checks event types, data and paging', () => {
    expect(codeOf(() => validateType('SCORE.updated:v2'))).toBeNull();
    expect(codeOf(() => validateType(''))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => validateType('has space'))).toBe('BAD_USER_INPUT');
    expect(validateData(undefined)).toEqual({});
    expect(validateData([1, 'a'])).toEqual([1, 'a']);
    expect(codeOf(() => validateData({ s: 'x'.repeat(16_400) }))).toBe('BAD_USER_INPUT');
    expect(validateAfterSeq(null)).toBeNull();
    expect(codeOf(() => validateAfterSeq(-1))).toBe('BAD_USER_INPUT');
    expect(pageSize(undefined)).toBe(100);
    expect(codeOf(() => pageSize(201))).toBe('BAD_USER_INPUT');
  });
});

describe('channel access', () => {
  const admin: Viewer = { id: 'a', name: 'A', role: 'ADMIN' };
  const user: Viewer = { id: 'u', name: 'U', role: 'AUDIENCE' };
  it.each([
    ['activity:c1', null, null],
    ['news', null, null],
    ['admin:ops', null, 'UNAUTHENTICATED'],
    ['admin:ops', user, 'FORBIDDEN'],
    ['admin:ops', admin, null],
  ] as const)('read %s as %j → %s', (channel, viewer, code) => {
    expect(codeOf(() => assertCanRead(viewer, channel))).toBe(code);
  });

  it('keeps activity:* for the server', () => {
    expect(codeOf(() => assertApiCanPublish('activity:c1'))).toBe('FORBIDDEN');
    expect(codeOf(() => assertApiCanPublish('news'))).toBeNull();
  });

  it.each([
    [0, null, 0, false], // empty channel
    [0, 1, 5, false], // everything kept
    [3, 4, 9, false], // continues right after
    [2, 4, 9, true], // seq 3 was pruned
    [9, 4, 9, false], // up to date
    [0, 1001, 2000, true],
  ])('after %i with oldest %s and latest %i: missed %s', (after, oldest, latest, missed) => {
    expect(missedEvents(after, oldest, latest)).toBe(missed);
  });
});

describe('activity feed rules', () => {
  it.each([
    [0, null],
    [99, null],
    [100, 100],
    [199, 100],
    [350, 300],
  ])('%i votes → milestone %s', (total, milestone) => {
    expect(milestoneOf(total)).toBe(milestone);
  });

  const judge = { id: 'j', name: 'J', role: 'JUDGE' as const };
  const base = {
    id: 'o',
    sessionId: 's',
    submissionId: 'sub',
    judge,
    author: judge,
    type: 'LOAN',
    amount: 5,
    equityPercentage: null,
    counterOfId: null,
  } as unknown as OfferView;
  it.each([
    ['PENDING', null, 'OFFER_MADE'],
    ['PENDING', 'o0', 'OFFER_COUNTERED'],
    ['ACCEPTED', null, 'OFFER_ACCEPTED'],
    ['REJECTED', null, 'OFFER_REJECTED'],
    ['WITHDRAWN', null, 'OFFER_WITHDRAWN'],
    ['EXPIRED', null, 'OFFER_EXPIRED'],
    ['COUNTERED', null, null],
  ])('offer %s (counterOf %s) → %s', (status, counterOfId, type) => {
    expect(offerActivity({ ...base, status, counterOfId } as OfferView)?.type ?? null).toBe(type);
  });

  it('signals reach every subscriber in order; a failing handler is reported and never stops the others', () => {
    const failures: string[] = [];
    const events = createDomainEvents((_error, name) => failures.push(name), noOutbox);
    const seen: string[] = [];
    const tally = (competitionId: string) => ({ data: { competitionId } }) as TallyEvent;
    events.on('tally.published', (e) => seen.push(`a:${e.data.competitionId}`));
    events.on('tally.published', () => {
      throw new Error('a failing reaction never breaks the emitter');
    });
    events.on('tally.published', (e) => seen.push(`b:${e.data.competitionId}`));
    events.on('session.changed', async () => void seen.push('session'));
    events.emit('tally.published', tally('c1'));
    events.emit('tally.published', tally('c2'));
    expect(seen).toEqual(['a:c1', 'b:c1', 'a:c2', 'b:c2']);
    expect(failures).toEqual(['tally.published', 'tally.published']);
  });

  it('a durable event calls its handlers at once, in order, and fails (to be retried) when one rejects', async () => {
    const failures: string[] = [];
    let dispatch!: Dispatch;
    const seen: string[] = [];
    const events = createDomainEvents(
      (_error, name) => failures.push(name),
      (d) => ((dispatch = d), noOutbox()),
    );
    events.on('competition.statusChanged', async (c, delivery) => void seen.push(`a:${c.id}:${delivery.id}`));
    events.on('competition.statusChanged', () => Promise.reject(new Error('retry me')));
    events.on('competition.statusChanged', async (c) => void seen.push(`b:${c.id}`));
    const delivery = { id: 'e1', once: () => Promise.resolve(true) };
    const done = dispatch('competition.statusChanged', { id: 'c1', title: 'T', status: 'OPEN' }, delivery);
    expect(seen).toEqual(['a:c1:e1', 'b:c1']); // called synchronously, in subscription order
    await expect(done).rejects.toThrow('1 handler(s) of competition.statusChanged failed');
    expect(failures).toEqual(['competition.statusChanged']);
    await expect(dispatch('tally.published', {}, delivery)).rejects.toThrow('unknown durable event');
  });
});
