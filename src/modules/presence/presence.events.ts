/**
 * What the presence module publishes, and how a subscriber reads it.
 *
 * - `presence:<userId>`: the user's full presence after each announced change (status, message,
 *   connection count, lastSeenAt). Each event is a full snapshot of one user, so subscriptions
 *   are conflated. The seq is assigned by the presence store in the same atomic step that records
 *   the announcement (not by Postgres: presence lives in the store), strictly increasing per user.
 *
 * A presence stream watches several users at once (`presenceChanged(userIds)`): it subscribes to
 * every user's topic, waits until all are live, reads a snapshot of every user, delivers it, then
 * delivers each user's newer events (seq above what was sent for that user). A slow reader holds
 * at most one pending view per user (the newest).
 */
import type { EventBus, TopicSubscription } from '../../realtime/event-bus.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';
import type { PresenceView } from './presence.rules.js';
import type { AnnouncedPresence } from './presence.tracker.js';
import { cancellableStream } from '../../realtime/stream.js';

export type { PresenceView } from './presence.rules.js';
export type PresenceEvent = RealtimeEvent<PresenceView>;

export function publishPresence(bus: EventBus, userId: string, seq: number, view: PresenceView): void {
  bus.publish('presence', userId, {
    topic: topicName('presence', userId),
    seq,
    publishedAt: new Date().toISOString(),
    data: view,
  });
}

/**
 * Snapshot-first, per user, over many users' topics. `snapshot` is called once every topic is
 * live; `return()` closes every topic subscription at once.
 */
export function presenceStream(
  bus: EventBus,
  userIds: readonly string[],
  snapshot: (userIds: readonly string[]) => Promise<AnnouncedPresence[]>,
): AsyncIterableIterator<PresenceView> {
  const ids = [...new Set(userIds)];
  const subscriptions: TopicSubscription<PresenceEvent>[] = ids.map((id) =>
    bus.subscribe('presence', id, { conflate: true }),
  );
  const lastSeq = new Map<string, number>();
  /** Undelivered views, one per user; Map order = arrival order of a user's first pending view. */
  const pendingViews = new Map<string, PresenceView>();
  let started: Promise<void> | undefined;
  let failure: unknown;
  let done = false;
  let wake: (() => void) | undefined;

  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  function finish(): IteratorResult<PresenceView> {
    done = true;
    pendingViews.clear();
    for (const subscription of subscriptions) subscription.close();
    notify();
    return { value: undefined, done: true };
  }

  async function pump(subscription: TopicSubscription<PresenceEvent>): Promise<void> {
    try {
      for (;;) {
        const result = await subscription.next();
        if (result.done || done) return;
        const { seq, data } = result.value;
        // Older than (or equal to) what this stream already sent for the user: stale.
        if (seq <= (lastSeq.get(data.userId) ?? -1)) continue;
        lastSeq.set(data.userId, seq);
        pendingViews.set(data.userId, data);
        notify();
      }
    } catch (error) {
      failure ??= error;
      notify();
    }
  }

  async function start(): Promise<void> {
    await Promise.all(subscriptions.map((s) => s.ready));
    const announced = await snapshot(ids);
    if (done) return;
    announced.forEach(({ view, seq }, i) => {
      const id = ids[i]!;
      if (seq > (lastSeq.get(id) ?? -1)) {
        lastSeq.set(id, seq);
        pendingViews.set(id, view);
      }
    });
    for (const subscription of subscriptions) void pump(subscription);
  }

  return cancellableStream<PresenceView>(async () => {
    if (done) return { value: undefined, done: true };
    await (started ??= start());
    for (;;) {
      if (done) return { value: undefined, done: true };
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a pump caught, rethrown as it came
      if (failure !== undefined) throw failure;
      const first = pendingViews.entries().next();
      if (!first.done) {
        const [userId, view] = first.value;
        pendingViews.delete(userId);
        return { value: view, done: false };
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }, finish);
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    /** A user's full presence after each announced change. */
    presence: PresenceView;
  }
}
