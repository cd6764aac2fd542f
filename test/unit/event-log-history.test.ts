/**
 * The event log's history shares queries between streams that start at once (a venue resuming on
 * the survivor after an instance died): identical reads in flight are one query, and `latest`
 * callers share a query that started after they asked, never one that may have read before.
 */
import { describe, expect, it } from 'vitest';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { eventLogHistory } from '../../src/realtime/event-log.js';

interface Pending {
  sql: string;
  resolve(rows: unknown[]): void;
}

/** A database whose queries wait until the test answers them. */
function fakeDb() {
  const pending: Pending[] = [];
  const db = {
    $queryRaw(strings: TemplateStringsArray) {
      return new Promise<unknown[]>((resolve) => pending.push({ sql: strings.join('?'), resolve }));
    },
  };
  return { db: db as unknown as PrismaClient, pending };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const row = (seq: number) => ({ seq, data: { seq }, createdAt: new Date(0) });

describe('eventLogHistory', () => {
  it('answers identical reads in flight with one query, and different ones with their own', async () => {
    const { db, pending } = fakeDb();
    const history = eventLogHistory(db, 'reactions:s1', 300);
    const same = Array.from({ length: 100 }, () => history.read(3, 6, 100));
    const other = history.read(4, 6, 100);
    await tick();
    expect(pending.map((p) => p.sql.includes('"EventLog"'))).toEqual([true, true]);
    pending[0]!.resolve([row(4), row(5), row(6)]);
    pending[1]!.resolve([row(5), row(6)]);
    const pages = await Promise.all(same);
    expect(new Set(pages.map((page) => JSON.stringify(page.map((e) => e.seq))))).toEqual(new Set(['[4,5,6]']));
    expect((await other).map((e) => e.seq)).toEqual([5, 6]);

    // Settled: a later read is a query of its own.
    const later = history.read(3, 6, 100);
    await tick();
    expect(pending).toHaveLength(3);
    pending[2]!.resolve([row(4)]);
    expect((await later).map((e) => e.seq)).toEqual([4]);
  });

  it('gives latest callers a query started after they asked: those during one in flight share the next', async () => {
    const { db, pending } = fakeDb();
    // Two streams of one topic (two subscribers' histories) share too.
    const first = eventLogHistory(db, 'reactions:s1', 300);
    const second = eventLogHistory(db, 'reactions:s1', 300);
    const early = first.latest();
    await tick();
    expect(pending).toHaveLength(1);
    // These came while the first query was in flight: it may have read before seq 8 committed.
    const during = [
      ...Array.from({ length: 50 }, () => first.latest()),
      ...Array.from({ length: 50 }, () => second.latest()),
    ];
    await tick();
    expect(pending).toHaveLength(1);
    pending[0]!.resolve([{ seq: 7 }]);
    expect(await early).toBe(7);
    await tick();
    expect(pending).toHaveLength(2);
    expect(pending[1]!.sql).toContain('"TopicSequence"');
    pending[1]!.resolve([{ seq: 8 }]);
    expect(new Set(await Promise.all(during))).toEqual(new Set([8]));

    // Another topic is never shared with this one.
    const elsewhere = eventLogHistory(db, 'reactions:s2', 300).latest();
    await tick();
    expect(pending).toHaveLength(3);
    pending[2]!.resolve([]);
    expect(await elsewhere).toBe(0);
  });
});
