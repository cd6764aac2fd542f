/** The sessions status cache: staleness bound, single-flight loads, seq-ordered write-through. */
import { describe, expect, it } from 'vitest';
import type { SessionStatus } from '../../src/generated/prisma/enums.js';
import { createStatusCache, type StatusEntry } from '../../src/modules/sessions/sessions.cache.js';

function setup(maxAgeMs = 1_000, maxEntries = 100) {
  let clock = 0;
  const db = new Map<string, StatusEntry>();
  const loads: string[] = [];
  let gate: Promise<void> | undefined;
  const cache = createStatusCache({
    now: () => clock,
    maxAgeMs,
    maxEntries,
    async load(id) {
      loads.push(id);
      const entry = db.get(id) ?? { status: null, seq: -1 };
      await gate;
      return entry;
    },
  });
  return {
    cache,
    db,
    loads,
    tick: (ms: number) => (clock += ms),
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

const entry = (status: SessionStatus | null, seq: number): StatusEntry => ({ status, seq });

describe('session status cache', () => {
  it('serves a status for maxAgeMs after its load started, then reloads', async () => {
    const { cache, db, loads, tick } = setup(1_000);
    db.set('s', entry('LIVE', 1));
    expect(await cache.get('s')).toBe('LIVE');
    db.set('s', entry('ENDED', 2)); // changed on another instance
    tick(999);
    expect(await cache.get('s')).toBe('LIVE');
    tick(1);
    expect(await cache.get('s')).toBe('ENDED');
    expect(loads).toEqual(['s', 's']);
  });

  it('caches unknown sessions too (null), within the same bound', async () => {
    const { cache, loads, tick } = setup(1_000);
    expect(await cache.get('nope')).toBeNull();
    expect(await cache.get('nope')).toBeNull();
    tick(1_000);
    expect(await cache.get('nope')).toBeNull();
    expect(loads).toEqual(['nope', 'nope']);
  });

  it('shares one load between concurrent misses', async () => {
    const { cache, db, loads, hold } = setup();
    db.set('s', entry('LIVE', 3));
    const release = hold();
    const answers = Promise.all(Array.from({ length: 50 }, () => cache.get('s')));
    release();
    expect(await answers).toEqual(Array(50).fill('LIVE'));
    expect(loads).toEqual(['s']);
  });

  it('sees a write-through at once, and a slower load of an older seq never overwrites it', async () => {
    const { cache, db, hold, tick } = setup();
    db.set('s', entry('LIVE', 4));
    const release = hold();
    const pending = cache.get('s'); // reads seq 4 (LIVE) ...
    cache.put('s', entry('ENDED', 5)); // ... while this instance commits seq 5
    release();
    expect(await pending).toBe('ENDED');
    expect(await cache.get('s')).toBe('ENDED');
    tick(10);
    expect(await cache.get('s')).toBe('ENDED');
  });

  it('write-through refreshes the entry: no reload within maxAgeMs of it', async () => {
    const { cache, db, loads, tick } = setup(1_000);
    db.set('s', entry('SCHEDULED', 0));
    await cache.get('s');
    tick(900);
    cache.put('s', entry('LIVE', 1));
    tick(900);
    expect(await cache.get('s')).toBe('LIVE');
    expect(loads).toEqual(['s']);
  });

  it('keeps at most maxEntries sessions', async () => {
    const { cache, db } = setup(1_000, 3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      db.set(id, entry('LIVE', 1));
      await cache.get(id);
    }
    expect(cache.size()).toBe(3);
  });
});
