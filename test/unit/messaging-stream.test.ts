/** untilAccessLost: viewer-bound streams that end with one ACCESS_LOST marker when access goes. */
import { describe, expect, it } from 'vitest';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';
import type { ConversationAccessEvent, TypingEvent } from '../../src/modules/messaging/messaging.events.js';
import { isAccessLost, untilAccessLost } from '../../src/modules/messaging/messaging.stream.js';

const bus = () =>
  createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });

const typing = (seq: number, userId: string, isTyping = true): TypingEvent => ({
  topic: 'typing:c1',
  seq,
  publishedAt: '',
  data: { conversationId: 'c1', user: { id: userId, name: userId, role: 'AUDIENCE' }, isTyping },
});
const access = (seq: number, ...userIds: string[]): ConversationAccessEvent => ({
  topic: 'conversationAccess:c1',
  seq,
  publishedAt: '',
  data: { conversationId: 'c1', userIds, reason: 'REMOVED' },
});

function stream(b: ReturnType<typeof bus>, afterSeq = 0) {
  const source = b.subscribe('typing', 'c1');
  const accessSub = b.subscribe('conversationAccess', 'c1');
  return untilAccessLost(source, accessSub, {
    conversationId: 'c1',
    viewerId: 'me',
    afterSeq,
    skip: (e) => e.data.user.id === 'me',
    lostIn: (e) => e.data.user.id === 'ghost',
  });
}

describe('untilAccessLost', () => {
  it('delivers the source, skipping what the viewer must not get', async () => {
    const b = bus();
    const s = stream(b);
    b.publish('typing', 'c1', typing(1, 'me'));
    b.publish('typing', 'c1', typing(2, 'bob'));
    expect((await s.next()).value).toMatchObject({ seq: 2 });
    await s.return!();
    expect(b.size()).toBe(0);
  });

  it('ends with one marker, then done, when an access event names the viewer; both subscriptions closed', async () => {
    const b = bus();
    const s = stream(b, 5);
    b.publish('conversationAccess', 'c1', access(5, 'me')); // from before the subscription: ignored
    b.publish('conversationAccess', 'c1', access(6, 'bob')); // someone else
    b.publish('typing', 'c1', typing(1, 'bob'));
    expect((await s.next()).value).toMatchObject({ seq: 1 });
    b.publish('conversationAccess', 'c1', access(7, 'bob', 'me'));
    const last = await s.next();
    expect(isAccessLost(last.value)).toBe(true);
    expect(last.value).toEqual({ accessLost: true, conversationId: 'c1' });
    expect(b.size()).toBe(0);
    b.publish('typing', 'c1', typing(2, 'bob'));
    expect((await s.next()).done).toBe(true);
  });

  it('wakes a waiting next() when access is lost', async () => {
    const b = bus();
    const s = stream(b);
    const pending = s.next();
    b.publish('conversationAccess', 'c1', access(1, 'me'));
    expect(isAccessLost((await pending).value)).toBe(true);
    expect((await s.next()).done).toBe(true);
  });

  it('ends when a source value shows access was already lost', async () => {
    const b = bus();
    const s = stream(b);
    b.publish('typing', 'c1', typing(1, 'ghost'));
    expect(isAccessLost((await s.next()).value)).toBe(true);
    expect((await s.next()).done).toBe(true);
    expect(b.size()).toBe(0);
  });

  it('completes when the bus closes everything (shutdown)', async () => {
    const b = bus();
    const s = stream(b);
    const pending = s.next();
    b.closeAll();
    expect((await pending).done).toBe(true);
  });
});
