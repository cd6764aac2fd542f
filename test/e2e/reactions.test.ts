/**
 * Reactions across two server processes sharing PostgreSQL and Redis: reactions sent to both
 * instances in the same windows are published exactly once per window (one durable row, one
 * seq, contiguous seqs, no repeated windowStart), a graphql-ws subscriber on A and an SSE
 * subscriber on B receive the same bursts, and the bursts add up to the reactions acknowledged.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ReactionsDocument,
  SendReactionDocument,
  type ReactionsSubscription,
  type SendReactionInput,
} from '../generated/graphql.js';
import { subscribe, type Feed } from '../support/clients.js';
import { execute, tokenFor } from '../support/graphql.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import type { ServerProcess } from '../support/server-process.js';

const WINDOW_MS = 200;
const TYPES = ['CLAP', 'FIRE', 'HEART', 'WOW', 'LAUGH'] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nextWindow = () => sleep(WINDOW_MS - (Date.now() % WINDOW_MS) + 5);

type Burst = ReactionsSubscription['reactions'];

let cluster: Cluster;
let databaseUrl: string;
let db: pg.Client;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  cluster = await startCluster({ REACTION_WINDOW_MS: String(WINDOW_MS) });
  ({ a, b, databaseUrl } = cluster);
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await cluster?.stop();
});

/** A LIVE session, written straight into the database (the sessions module owns its API). */
async function liveSession(): Promise<string> {
  const competitionId = randomUUID();
  const sessionId = randomUUID();
  await db.query(
    `INSERT INTO "Competition" ("id", "title", "votingMethod", "status", "updatedAt") VALUES ($1, 'E2E', 'SIMPLE', 'OPEN', now())`,
    [competitionId],
  );
  await db.query(
    `INSERT INTO "EventSession" ("id", "competitionId", "status", "submissionIds", "presentationSeconds", "updatedAt") VALUES ($1, $2, 'LIVE', '{}', 60, now())`,
    [sessionId, competitionId],
  );
  return sessionId;
}

const bursts = (feed: Feed<ReactionsSubscription>, afterSeq: number): Burst[] =>
  feed.results.flatMap((r) => (r.data ? [r.data.reactions] : [])).filter((burst) => burst.seq > afterSeq);
const sum = (list: Burst[]): number => list.reduce((s, burst) => s + burst.total, 0);

describe('reactions on two instances', () => {
  it('publish each window once, the same bursts on both instances and transports, adding up to what was acknowledged', async () => {
    const sessionId = await liveSession();
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => tokenFor({ sub: `e2e-reactor-${i}` })));
    let acknowledged = 0;
    const send = async (server: ServerProcess, input: SendReactionInput, token: string): Promise<void> => {
      const result = await execute(fetch, server.graphqlUrl, SendReactionDocument, { input }, token);
      if (result.data?.sendReaction === true) acknowledged += 1;
      else throw new Error(`sendReaction failed: ${JSON.stringify(result.errors)}`);
    };

    const feeds = [
      subscribe('graphql-ws', a.url, ReactionsDocument, { sessionId }),
      subscribe('sse', b.url, ReactionsDocument, { sessionId }),
    ];
    try {
      // Live streams have no first snapshot: send probes until both subscribers saw a burst.
      for (let i = 0; feeds.some((feed) => bursts(feed, 0).length === 0); i += 1) {
        if (i > 40) throw new Error(`subscribers never saw a burst: ${JSON.stringify(feeds.map((f) => f.results))}`);
        await send(i % 2 === 0 ? a : b, { sessionId, type: 'CLAP', intensity: 1 }, tokens[0]!);
        await sleep(WINDOW_MS + 100);
      }
      await sleep(3 * WINDOW_MS);
      const { rows: seqRows } = await db.query<{ seq: number }>(
        `SELECT "seq" FROM "TopicSequence" WHERE "topic" = $1`,
        [`reactions:${sessionId}`],
      );
      const baseline = seqRows[0]!.seq;
      const beforeMain = acknowledged;

      // Main phase: five windows, each with 60 reactions to A and 60 to B sent at once.
      const started = Date.now();
      let n = 0;
      for (let w = 0; w < 5; w += 1) {
        await nextWindow();
        await Promise.all(
          Array.from({ length: 120 }, (_, k) => {
            const i = n++;
            const input: SendReactionInput = {
              sessionId,
              type: TYPES[i % 5]!,
              intensity: (i % 10) + 1,
              ...(i % 3 ? { x: (i % 8) / 8, y: 0.999 } : {}),
            };
            return send(k % 2 === 0 ? a : b, input, tokens[i % tokens.length]!);
          }),
        );
      }
      const mainAcks = acknowledged - beforeMain;
      expect(mainAcks).toBe(600);
      const elapsed = Date.now() - started;

      for (const feed of feeds) await feed.waitFor(() => sum(bursts(feed, baseline)) >= mainAcks, 15_000);
      await sleep(3 * WINDOW_MS);

      const [onA, onB] = feeds.map((feed) => bursts(feed, baseline));
      // Same bursts on A (graphql-ws) and B (SSE), in the same order.
      expect(onB).toEqual(onA);
      expect(sum(onA!)).toBe(mainAcks);
      expect(onA!.length).toBeGreaterThanOrEqual(5);
      // Exactly one burst per window: contiguous seqs, distinct windows.
      onA!.forEach((burst, i) => expect(burst.seq).toBe(baseline + 1 + i));
      expect(new Set(onA!.map((burst) => burst.windowStart)).size).toBe(onA!.length);
      // Per type, intensity and heat map add up too.
      const ofType = (type: string) =>
        Array.from({ length: 600 }, (_, i) => i).filter((i) => TYPES[i % 5] === type).length;
      for (const type of TYPES)
        expect(onA!.reduce((s, burst) => s + burst.counts.find((c) => c.type === type)!.count, 0)).toBe(ofType(type));
      expect(onA!.reduce((s, burst) => s + burst.intensity, 0)).toBe(
        Array.from({ length: 600 }, (_, i) => (i % 10) + 1).reduce((x, y) => x + y, 0),
      );
      const lastRow = Array.from(
        { length: 8 },
        (_, col) => Array.from({ length: 600 }, (_, i) => i).filter((i) => i % 3 && i % 8 === col).length,
      );
      expect(
        onA!.reduce((row, burst) => row.map((v, col) => v + burst.heatmap[7]![col]!), new Array<number>(8).fill(0)),
      ).toEqual(lastRow);

      // Durable: one row per published window, one seq per row, totals equal to every acknowledgement.
      const { rows } = await db.query<{ windowStart: Date; total: number }>(
        `SELECT "windowStart", "total" FROM "ReactionWindow" WHERE "sessionId" = $1 ORDER BY "windowStart"`,
        [sessionId],
      );
      expect(rows.reduce((s, r) => s + r.total, 0)).toBe(acknowledged);
      const { rows: finalSeq } = await db.query<{ seq: number }>(
        `SELECT "seq" FROM "TopicSequence" WHERE "topic" = $1`,
        [`reactions:${sessionId}`],
      );
      expect(finalSeq[0]!.seq).toBe(rows.length);
      expect(finalSeq[0]!.seq).toBe(baseline + onA!.length);
      console.info(`reactions e2e: ${mainAcks} reactions over 2 instances in ${elapsed} ms → ${onA!.length} bursts`);
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });
});
