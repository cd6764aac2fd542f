/**
 * The tracker on the memory store with an injected clock: several trackers on one store stand for
 * several instances (what the Redis store gives across processes). No timers: the test drives
 * heartbeats and sweeps.
 */
import { describe, expect, it } from 'vitest';
import { createEventBus } from '../../src/realtime/event-bus.js';
import { presenceStream, publishPresence } from '../../src/modules/presence/presence.events.js';
import type { PresenceView } from '../../src/modules/presence/presence.rules.js';
import { createMemoryPresenceStore } from '../../src/modules/presence/presence.store.memory.js';
import type { PresenceStore } from '../../src/modules/presence/presence.store.js';
import { createPresenceTracker, type PresenceTracker } from '../../src/modules/presence/presence.tracker.js';

const rules = { awayAfterMs: 10_000, offlineGraceMs: 2_000 };
const TTL = 3_000;

interface Announced {
  instance: string;
  userId: string;
  seq: number;
  view: PresenceView;
}

function setup() {
  let now = 1_000_000;
  const store = createMemoryPresenceStore({ offlineGraceMs: rules.offlineGraceMs, recheckMs: 500, now: () => now });
  const announced: Announced[] = [];
  const offline: { userId: string; at: Date }[] = [];
  const errors: unknown[] = [];
  const trackers: PresenceTracker[] = [];
  const instance = (name: string, s: PresenceStore = store): PresenceTracker => {
    const tracker = createPresenceTracker({
      store: s,
      instanceId: name,
      rules,
      connectionTtlMs: TTL,
      activityThrottleMs: 0,
      timers: false,
      announce: (userId, seq, view) => announced.push({ instance: name, userId, seq, view }),
      onOffline: async (userId, at) => void offline.push({ userId, at }),
      onError: (message, details) => errors.push({ message, details }),
    });
    trackers.push(tracker);
    return tracker;
  };
  return {
    store,
    announced,
    offline,
    errors,
    instance,
    advance: (ms: number) => (now += ms),
    /** Time passing for live instances: they refresh their entries (every ttl/3) and sweep. */
    async pass(ms: number, live: PresenceTracker[]) {
      for (let left = ms; left > 0; left -= 500) {
        now += Math.min(500, left);
        for (const tracker of live) await tracker.heartbeat();
        for (const tracker of live) await tracker.sweep();
      }
    },
    now: () => now,
    statuses: (userId: string) =>
      announced.filter((a) => a.userId === userId).map((a) => `${a.view.status}/${a.view.connections}`),
    settle: async () => {
      // Lets every tracker's queued store steps run (they are promise chains, no timers).
      for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

describe('presence tracker on the memory store', () => {
  it('counts connections across instances; OFFLINE only after the grace, announced once', async () => {
    const t = setup();
    const a = t.instance('a');
    const b = t.instance('b');
    const ws = a.open('alice', 'graphql-ws');
    await ws.ready;
    const sse = b.open('alice', 'sse');
    await sse.ready;
    expect((await a.read(['alice']))[0]!.view).toMatchObject({ status: 'ONLINE', connections: 2, lastSeenAt: null });

    ws.close();
    await t.settle();
    expect((await b.read(['alice']))[0]!.view).toMatchObject({ status: 'ONLINE', connections: 1 });

    sse.close();
    await t.settle();
    const closedAt = t.now();
    expect((await a.read(['alice']))[0]!.view).toMatchObject({
      status: 'ONLINE',
      connections: 0,
      lastSeenAt: new Date(closedAt).toISOString(),
    });

    t.advance(rules.offlineGraceMs - 1);
    await Promise.all([a.sweep(), b.sweep()]);
    expect((await a.read(['alice']))[0]!.view.status).toBe('ONLINE');

    t.advance(1);
    await Promise.all([a.sweep(), b.sweep()]);
    await Promise.all([a.sweep(), b.sweep(), a.read(['alice']), b.read(['alice'])]);
    expect(t.statuses('alice')).toEqual(['ONLINE/1', 'ONLINE/2', 'ONLINE/1', 'ONLINE/0', 'OFFLINE/0']);
    expect(t.offline).toEqual([{ userId: 'alice', at: new Date(closedAt) }]);
    const seqs = t.announced.map((x) => x.seq);
    for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    expect(t.errors).toEqual([]);
  });

  it('a reconnect within the grace does not flap', async () => {
    const t = setup();
    const a = t.instance('a');
    const first = a.open('bob', 'graphql-ws');
    await first.ready;
    first.close();
    await t.settle();
    t.advance(rules.offlineGraceMs - 100);
    const second = a.open('bob', 'sse');
    await second.ready;
    await t.pass(rules.offlineGraceMs * 3, [a]);
    expect(t.statuses('bob')).toEqual(['ONLINE/1', 'ONLINE/0', 'ONLINE/1']);
  });

  it('a dead instance: its entries expire after the TTL, then OFFLINE after the grace, exactly once', async () => {
    const t = setup();
    const dead = t.instance('dead');
    const b = t.instance('b');
    const c = t.instance('c');
    await dead.open('carol', 'graphql-ws').ready;
    const live = b.open('dan', 'sse');
    await live.ready;

    // Nobody refreshes carol's entry any more; b keeps refreshing dan's.
    for (let elapsed = 0; elapsed < TTL + rules.offlineGraceMs + 1_000; elapsed += 250) {
      t.advance(250);
      if (elapsed % 1_000 === 0) await b.heartbeat();
      await Promise.all([b.sweep(), c.sweep()]);
    }
    expect(t.statuses('carol')).toEqual(['ONLINE/1', 'ONLINE/0', 'OFFLINE/0']);
    expect(t.announced.filter((x) => x.userId === 'carol' && x.view.status === 'OFFLINE')).toHaveLength(1);
    expect(t.statuses('dan')).toEqual(['ONLINE/1']);
    expect((await c.read(['dan']))[0]!.view.connections).toBe(1);
  });

  it('AWAY after the idle period; any activity brings the user back ONLINE', async () => {
    const t = setup();
    const a = t.instance('a');
    await a.open('erin', 'graphql-ws').ready;
    await t.pass(rules.awayAfterMs - 500, [a]);
    expect((await a.read(['erin']))[0]!.view.status).toBe('ONLINE');
    await t.pass(500, [a]);
    expect(t.statuses('erin')).toEqual(['ONLINE/1', 'AWAY/1']);
    a.activity('erin');
    await t.settle();
    expect(t.statuses('erin')).toEqual(['ONLINE/1', 'AWAY/1', 'ONLINE/1']);
  });

  it('DND and the message hold while connected and are cleared by OFFLINE; no connection: refused', async () => {
    const t = setup();
    const a = t.instance('a');
    expect(await a.setStatus('fay', 'DND', 'nope')).toBe('offline');
    const lease = a.open('fay', 'graphql-ws');
    await lease.ready;
    expect(await a.setStatus('fay', 'DND', 'deep work')).toMatchObject({
      view: { status: 'DND', statusMessage: 'deep work' },
    });
    expect(await a.setStatus('fay', 'DND', undefined)).toMatchObject({
      view: { status: 'DND', statusMessage: 'deep work' },
    });
    await t.pass(rules.awayAfterMs * 2, [a]);
    expect((await a.read(['fay']))[0]!.view.status).toBe('DND');
    lease.close();
    await t.settle();
    expect((await a.read(['fay']))[0]!.view).toMatchObject({ status: 'DND', connections: 0 });
    t.advance(rules.offlineGraceMs);
    await a.sweep();
    await a.open('fay', 'sse').ready;
    expect((await a.read(['fay']))[0]!.view).toMatchObject({ status: 'ONLINE', statusMessage: null, connections: 1 });
    expect(await a.setStatus('fay', null, null)).toMatchObject({ view: { status: 'ONLINE' } });
  });

  it('a reconnect after an unannounced OFFLINE announces the OFFLINE first (and drops DND)', async () => {
    const t = setup();
    const a = t.instance('a');
    const lease = a.open('gus', 'graphql-ws');
    await lease.ready;
    await a.setStatus('gus', 'DND', 'busy');
    lease.close();
    await t.settle();
    t.advance(rules.offlineGraceMs + 50); // no sweep ran
    await a.open('gus', 'graphql-ws').ready;
    expect(t.statuses('gus')).toEqual(['ONLINE/1', 'DND/1', 'DND/0', 'OFFLINE/0', 'ONLINE/1']);
    expect(t.announced.at(-1)!.view.statusMessage).toBeNull();
  });

  it('an entry the store lost (expired while the instance stalled) is opened again by the heartbeat', async () => {
    const t = setup();
    const a = t.instance('a');
    const b = t.instance('b');
    await a.open('hal', 'graphql-ws').ready;
    t.advance(TTL + 1); // a stalled past the TTL
    await b.sweep();
    expect((await b.read(['hal']))[0]!.view.connections).toBe(0);
    await a.heartbeat();
    await t.settle();
    expect((await b.read(['hal']))[0]!.view).toMatchObject({ status: 'ONLINE', connections: 1 });
  });

  it('close() removes this instance’s entries', async () => {
    const t = setup();
    const a = t.instance('a');
    const b = t.instance('b');
    await a.open('ivy', 'graphql-ws').ready;
    await a.open('ivy', 'sse').ready;
    await a.close();
    expect(a.localConnections()).toBe(0);
    expect((await b.read(['ivy']))[0]!.view).toMatchObject({ connections: 0, status: 'ONLINE' });
  });
});

describe('presenceStream', () => {
  it('sends a snapshot of every user first, then only newer events per user', async () => {
    const bus = createEventBus({ eventTarget: new EventTarget() as never, barrier: () => Promise.resolve() });
    const view = (userId: string, connections: number): PresenceView => ({
      userId,
      status: connections > 0 ? 'ONLINE' : 'OFFLINE',
      statusMessage: null,
      connections,
      lastSeenAt: null,
    });
    const stream = presenceStream(bus, ['u1', 'u2', 'u1'], async (ids) => {
      // Published while the snapshot is read: older than the snapshot for u1, newer for u2.
      publishPresence(bus, 'u1', 4, view('u1', 9));
      publishPresence(bus, 'u2', 8, view('u2', 2));
      return ids.map((id) => (id === 'u1' ? { view: view('u1', 1), seq: 5 } : { view: view('u2', 0), seq: 7 }));
    });
    const received: PresenceView[] = [];
    await new Promise((resolve) => setImmediate(resolve));
    received.push((await stream.next()).value as PresenceView, (await stream.next()).value as PresenceView);
    publishPresence(bus, 'u1', 5, view('u1', 7)); // a duplicate of the snapshot's seq
    publishPresence(bus, 'u1', 6, view('u1', 3));
    received.push((await stream.next()).value as PresenceView);
    // u2's snapshot was still undelivered when its newer event came: the newest replaces it.
    expect(received.map((v) => `${v.userId}:${v.connections}`)).toEqual(['u1:1', 'u2:2', 'u1:3']);
    await stream.return!();
    expect(bus.size()).toBe(0);
    expect((await stream.next()).done).toBe(true);
  });
});
