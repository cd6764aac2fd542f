import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import type { OfferView } from '../../src/modules/offers/offers.events.js';
import type { NotificationEvent, NotificationView } from '../../src/modules/notifications/notifications.events.js';
import {
  compareBacklog,
  dedupHit,
  expiresAtFor,
  listLimit,
  validateNotify,
  type BacklogItem,
  type NotifyInput,
} from '../../src/modules/notifications/notifications.rules.js';
import { createMemoryNotificationAudience } from '../../src/modules/notifications/notifications.store.memory.js';
import { resumableStream } from '../../src/realtime/resume.js';
import { backlogThenLive } from '../../src/modules/notifications/notifications.stream.js';
import { offerNotice } from '../../src/modules/notifications/notifications.triggers.js';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s));

describe('backlog order', () => {
  it('puts higher priority first, then older first, then lower seq', () => {
    const items: (BacklogItem & { id: string })[] = [
      { id: 'normal-old', priority: 'NORMAL', createdAt: at(1), seq: 1 },
      { id: 'low', priority: 'LOW', createdAt: at(0), seq: 2 },
      { id: 'critical-new', priority: 'CRITICAL', createdAt: at(9), seq: 3 },
      { id: 'normal-new', priority: 'NORMAL', createdAt: at(5), seq: 4 },
      { id: 'urgent', priority: 'URGENT', createdAt: at(7), seq: 5 },
      { id: 'critical-old', priority: 'CRITICAL', createdAt: at(2), seq: 6 },
      { id: 'high', priority: 'HIGH', createdAt: at(3), seq: 7 },
      // Same priority and instant: creation order decides.
      { id: 'normal-old-b', priority: 'NORMAL', createdAt: at(1).toISOString(), seq: 9 },
      { id: 'normal-old-a', priority: 'NORMAL', createdAt: at(1).toISOString(), seq: 8 },
    ];
    expect([...items].sort(compareBacklog).map((i) => i.id)).toEqual([
      'critical-old',
      'critical-new',
      'urgent',
      'high',
      'normal-old',
      'normal-old-a',
      'normal-old-b',
      'normal-new',
      'low',
    ]);
  });
});

describe('dedup window', () => {
  const now = at(30);
  const row = (dedupKey: string | null, createdS: number, expiresS: number | null, id = `${dedupKey}-${createdS}`) => ({
    id,
    dedupKey,
    createdAt: at(createdS),
    expiresAt: expiresS === null ? null : at(expiresS),
  });

  it.each([
    { name: 'no key never dedups', existing: [row('k', 1, null)], key: null, hit: null },
    { name: 'same key, no expiry: kept forever', existing: [row('k', 1, null)], key: 'k', hit: 'k-1' },
    { name: 'same key, unexpired', existing: [row('k', 1, 31)], key: 'k', hit: 'k-1' },
    { name: 'same key, expired exactly now', existing: [row('k', 1, 30)], key: 'k', hit: null },
    { name: 'same key, expired', existing: [row('k', 1, 10)], key: 'k', hit: null },
    { name: 'other key', existing: [row('other', 1, null)], key: 'k', hit: null },
    {
      name: 'the newest live one wins',
      existing: [row('k', 1, null), row('k', 5, 100), row('k', 8, 20)],
      key: 'k',
      hit: 'k-5',
    },
  ])('$name', ({ existing, key, hit }) => {
    expect(dedupHit(existing, key, now)?.id ?? null).toBe(hit);
  });

  it('computes expiry from the TTL', () => {
    expect(expiresAtFor(null, now)).toBeNull();
    expect(expiresAtFor(90, now)?.toISOString()).toBe(at(120).toISOString());
  });
});

describe('validation', () => {
  const ok: NotifyInput = { type: 'T', title: 'Hello' };
  const fieldOf = (input: NotifyInput): unknown => {
    try {
      validateNotify(input);
      return null;
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      return (error as AppError).details['field'];
    }
  };

  it('applies defaults and trims', () => {
    expect(validateNotify({ type: ' T ', title: ' Hi ', body: ' b ' })).toEqual({
      type: 'T',
      title: 'Hi',
      body: ' b ',
      priority: 'NORMAL',
      data: null,
      ttlSeconds: null,
      dedupKey: null,
    });
  });

  it.each([
    [{ ...ok, type: '' }, 'input.type'],
    [{ ...ok, type: 'x'.repeat(101) }, 'input.type'],
    [{ ...ok, title: '   ' }, 'input.title'],
    [{ ...ok, title: 'x'.repeat(201) }, 'input.title'],
    [{ ...ok, body: 'x'.repeat(2001) }, 'input.body'],
    [{ ...ok, ttlSeconds: 0 }, 'input.ttlSeconds'],
    [{ ...ok, ttlSeconds: 31_536_001 }, 'input.ttlSeconds'],
    [{ ...ok, ttlSeconds: 1.5 }, 'input.ttlSeconds'],
    [{ ...ok, dedupKey: '' }, 'input.dedupKey'],
    [{ ...ok, dedupKey: 'k'.repeat(201) }, 'input.dedupKey'],
    [{ ...ok, data: { big: 'x'.repeat(20_000) } }, 'input.data'],
    [
      {
        ...ok,
        type: 'x'.repeat(100),
        title: 'x'.repeat(200),
        body: 'x'.repeat(2000),
        ttlSeconds: 31_536_000,
        dedupKey: 'k'.repeat(200),
      },
      null,
    ],
    [{ ...ok, ttlSeconds: 1 }, null],
  ])('%#: %j → %s', (input, field) => {
    expect(fieldOf(input)).toBe(field);
  });

  it('bounds first to 1..100, default 50', () => {
    expect(listLimit(undefined)).toBe(50);
    expect(listLimit(100)).toBe(100);
    expect(() => listLimit(0)).toThrow(AppError);
    expect(() => listLimit(101)).toThrow(AppError);
  });
});

describe('offer notices', () => {
  const judge = { id: 'j1', name: 'Mark', role: 'JUDGE' as const };
  const founder = { id: 'f1', name: 'Fay', role: 'FOUNDER' as const };
  const offer = (over: Partial<OfferView>): OfferView => ({
    id: 'o1',
    sessionId: 's1',
    submissionId: 'sub1',
    judge,
    author: judge,
    type: 'EQUITY',
    amount: 100_000,
    equityPercentage: 10,
    interestRatePercent: null,
    termMonths: null,
    royaltyPercent: null,
    conditions: [],
    status: 'PENDING',
    counterOfId: null,
    counterOf: null,
    counterId: null,
    createdAt: at(0).toISOString(),
    updatedAt: at(0).toISOString(),
    expiresAt: null,
    respondedAt: null,
    ...over,
  });
  const submission = { title: 'Rocket', founderId: 'f1' };

  it.each([
    ['a new offer → the founder', offer({}), 'f1', 'OFFER_RECEIVED'],
    ['a counter-offer → the judge', offer({ id: 'o2', author: founder, counterOfId: 'o1' }), 'j1', 'OFFER_COUNTERED'],
    ["the founder accepts the judge's offer → the judge", offer({ status: 'ACCEPTED' }), 'j1', 'OFFER_ACCEPTED'],
    [
      "the judge rejects the founder's counter → the founder",
      offer({ id: 'o2', author: founder, counterOfId: 'o1', status: 'REJECTED' }),
      'f1',
      'OFFER_REJECTED',
    ],
    ['the original of a counter → nobody (the counter says it)', offer({ status: 'COUNTERED' }), null, null],
    ['withdrawn → nobody', offer({ status: 'WITHDRAWN' }), null, null],
    ['expired → nobody', offer({ status: 'EXPIRED' }), null, null],
  ])('%s', (_name, view, userId, type) => {
    const notice = offerNotice(view, submission);
    expect(notice?.userId ?? null).toBe(userId);
    expect(notice?.input.type ?? null).toBe(type);
  });

  it('skips a new offer on a submission without founder, and keys each notice to its transition', () => {
    expect(offerNotice(offer({}), { title: 'Orphan', founderId: null })).toBeNull();
    expect(offerNotice(offer({}), submission)?.input.dedupKey).toBe('offer:o1:received');
    expect(offerNotice(offer({ status: 'ACCEPTED' }), submission)?.input).toMatchObject({
      dedupKey: 'offer:o1:ACCEPTED',
      priority: 'URGENT',
    });
  });
});

describe('backlogThenLive', () => {
  const view = (seq: number, priority: NotificationView['priority'] = 'NORMAL'): NotificationView => ({
    id: `n${seq}`,
    userId: 'u1',
    type: 'T',
    title: `#${seq}`,
    body: null,
    priority,
    data: null,
    seq,
    createdAt: at(seq).toISOString(),
    readAt: null,
    expiresAt: null,
  });
  const ev = (v: NotificationView): NotificationEvent => ({
    topic: 'notifications:u1',
    seq: v.seq,
    publishedAt: v.createdAt,
    data: v,
  });
  const memoryBus = () =>
    createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });

  async function take<T>(iterator: AsyncIterator<T>, n: number): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < n; i += 1) out.push((await iterator.next()).value as T);
    return out;
  }

  /** The live part as the service opens it: a resumable stream over `sub`, with the stored events as history. */
  const liveOver =
    (bus: ReturnType<typeof memoryBus>, stored: NotificationView[], skip?: (e: NotificationEvent) => boolean) =>
    (seq: number) =>
      resumableStream<NotificationView>({
        initial: bus.subscribe('notifications', 'u1'),
        subscribe: () => bus.subscribe('notifications', 'u1'),
        history: {
          read: async (after, upTo, limit) =>
            stored
              .filter((v) => v.seq > after && v.seq <= upTo)
              .sort((a, b) => a.seq - b.seq)
              .slice(0, limit)
              .map(ev),
          latest: async () => Math.max(0, ...stored.map((v) => v.seq)),
        },
        afterSeq: seq,
        gapWaitMs: 1_000,
        skip,
      });

  it('pages the backlog, then delivers live events after its seq, in seq order, each once', async () => {
    const bus = memoryBus();
    // Stored: seq 1..6, 6 already read (not in the backlog), the rest read in pages of 2. Live:
    // 6, 4 and 5 again (published while the backlog was read), then 8 before 7 (two instances racing).
    const backlog = [view(3, 'HIGH'), view(1), view(2), view(4), view(5)];
    const stored = [...backlog, view(6)];
    let abandoned = 0;
    const stream = await backlogThenLive({
      pageSize: 2,
      start: async () => ({ seq: 6, page: backlog.slice(0, 2).map(ev) }),
      nextPage: async (last) => {
        const i = backlog.findIndex((v) => v.id === last.data.id);
        bus.publish('notifications', 'u1', ev(view(5)));
        return backlog.slice(i + 1, i + 3).map(ev);
      },
      live: async (seq) => {
        const live = await liveOver(bus, stored)(seq);
        bus.publish('notifications', 'u1', ev(view(6)));
        bus.publish('notifications', 'u1', ev(view(4)));
        return live;
      },
      abandon: () => (abandoned += 1),
    });
    const first = await take(stream, 5);
    stored.push(view(7), view(8));
    bus.publish('notifications', 'u1', ev(view(8)));
    bus.publish('notifications', 'u1', ev(view(7)));
    const rest = await take(stream, 2);
    expect([...first, ...rest].map((e) => e.data.id)).toEqual(['n3', 'n1', 'n2', 'n4', 'n5', 'n7', 'n8']);
    await stream.return!();
    expect(bus.size()).toBe(0);
    expect(abandoned).toBe(0);
  });

  it('skips live events the subscriber does not get', async () => {
    const bus = memoryBus();
    const stored = [view(1)];
    const stream = await backlogThenLive({
      pageSize: 10,
      start: async () => ({ seq: 1, page: [ev(view(1))] }),
      nextPage: async () => [],
      live: liveOver(bus, stored, (e) => e.data.type === 'EXPIRED'),
      abandon: () => undefined,
    });
    expect((await stream.next()).value?.data.id).toBe('n1');
    bus.publish('notifications', 'u1', ev(view(1)));
    bus.publish('notifications', 'u1', ev({ ...view(2), type: 'EXPIRED' }));
    bus.publish('notifications', 'u1', ev(view(3)));
    expect((await stream.next()).value?.data.id).toBe('n3');
    await stream.return!();
  });

  it('ends a subscriber waiting for an event when returned', async () => {
    const bus = memoryBus();
    const stream = await backlogThenLive({
      pageSize: 10,
      start: async () => ({ seq: 0, page: [] }),
      nextPage: async () => [],
      live: liveOver(bus, []),
      abandon: () => undefined,
    });
    const pending = stream.next();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await stream.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(bus.size()).toBe(0);
  });

  it('abandons (closes what it opened) when the backlog cannot be read', async () => {
    let abandoned = 0;
    const failing = backlogThenLive({
      pageSize: 10,
      start: async () => {
        throw new Error('database down');
      },
      nextPage: async () => [],
      live: liveOver(memoryBus(), []),
      abandon: () => (abandoned += 1),
    });
    await expect(failing).rejects.toThrow('database down');
    expect(abandoned).toBe(1);
  });
});

describe('memory audience', () => {
  it('counts live subscriptions per user; release is idempotent', async () => {
    const audience = createMemoryNotificationAudience();
    const a1 = audience.track('a');
    const a2 = audience.track('a');
    audience.track('b')();
    expect(await audience.listening(['a', 'b', 'c'])).toEqual(new Set(['a']));
    a1();
    a1();
    expect(await audience.listening(['a'])).toEqual(new Set(['a']));
    a2();
    expect(await audience.listening(['a'])).toEqual(new Set());
  });
});
