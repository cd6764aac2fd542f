import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import type { Viewer } from '../../src/guards/auth.js';
import type { OfferView } from '../../src/modules/offers/offers.events.js';
import { milestoneOf, offerActivity } from '../../src/modules/channels/channels.triggers.js';
import { createDomainEvents } from '../../src/domain-events.js';
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

  it('domain events reach every subscriber in order; a failing handler is reported and never stops the others', () => {
    const failures: string[] = [];
    const events = createDomainEvents((_error, name) => failures.push(name));
    const seen: string[] = [];
    events.on('competition.statusChanged', (c) => seen.push(`a:${c.id}`));
    events.on('competition.statusChanged', () => {
      throw new Error('a failing reaction never breaks the emitter');
    });
    events.on('competition.statusChanged', (c) => seen.push(`b:${c.id}`));
    events.on('offers.committed', () => seen.push('offers'));
    events.emit('competition.statusChanged', { id: 'c1', title: 'T', status: 'OPEN' });
    events.emit('competition.statusChanged', { id: 'c2', title: 'T', status: 'CLOSED' });
    expect(seen).toEqual(['a:c1', 'b:c1', 'a:c2', 'b:c2']);
    expect(failures).toEqual(['competition.statusChanged', 'competition.statusChanged']);
  });
});
