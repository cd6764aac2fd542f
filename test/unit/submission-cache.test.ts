/**
 * The submission cache behind TallyEntry.submission and Vote.submission: a list's misses cost one
 * query, hits none (and are answered synchronously), unknown ids are not remembered.
 */
import { describe, expect, it } from 'vitest';
import type { Submission } from '../../src/generated/prisma/client.js';
import { createSubmissionCache } from '../../src/modules/competitions/competitions.cache.js';

const row = (id: string): Submission => ({
  id,
  competitionId: 'c1',
  title: `Title ${id}`,
  founderId: null,
  createdAt: new Date(0),
});

function loader(known: readonly string[]) {
  const calls: string[][] = [];
  let fail: Error | undefined;
  const load = async (ids: readonly string[]): Promise<Submission[]> => {
    calls.push([...ids]);
    if (fail) throw fail;
    return ids.filter((id) => known.includes(id)).map(row);
  };
  return { load, calls, failNext: (error: Error) => (fail = error), recover: () => (fail = undefined) };
}

describe('submission cache', () => {
  it("loads a list's misses in one query, then answers from memory synchronously", async () => {
    const db = loader(['s1', 's2', 's3']);
    const cache = createSubmissionCache(db.load);
    const first = await Promise.all(['s1', 's2', 's3', 's2'].map(async (id) => cache.get(id)));
    expect(first.map((s) => s?.title)).toEqual(['Title s1', 'Title s2', 'Title s3', 'Title s2']);
    expect(db.calls).toEqual([['s1', 's2', 's3']]);
    expect(cache.get('s2')).toEqual(row('s2')); // not a promise
    expect(db.calls).toHaveLength(1);
  });

  it('answers null for an unknown id and asks again next time (a submission created since)', async () => {
    const db = loader([]);
    const cache = createSubmissionCache(db.load);
    expect(await cache.get('later')).toBeNull();
    expect(await cache.get('later')).toBeNull();
    expect(db.calls).toEqual([['later'], ['later']]);
  });

  it('rejects every waiter of a failed load, and loads again afterwards', async () => {
    const db = loader(['s1', 's2']);
    const cache = createSubmissionCache(db.load);
    db.failNext(new Error('database down'));
    const results = await Promise.allSettled([cache.get('s1'), cache.get('s2'), cache.get('s1')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    db.recover();
    expect((await cache.get('s1'))?.id).toBe('s1');
  });

  it('keeps at most maxEntries rows, forgetting the oldest first', async () => {
    const db = loader(['a', 'b', 'c']);
    const cache = createSubmissionCache(db.load, 2);
    await Promise.all([cache.get('a'), cache.get('b')]);
    await cache.get('c');
    expect(cache.get('c')).not.toBeInstanceOf(Promise);
    expect(cache.get('b')).not.toBeInstanceOf(Promise);
    expect(cache.get('a')).toBeInstanceOf(Promise);
  });
});
