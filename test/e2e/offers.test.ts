/**
 * Offers and the investment pool across two server processes sharing PostgreSQL and Redis:
 * transitions made on A reach a graphql-ws subscriber on B and an SSE subscriber on A, in seq
 * order with no gaps; an expiry is published exactly once although both instances sweep; pool
 * totals from pledges on both instances stream to watchers on both and end on the recount.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  InvestmentPoolDocument,
  InvestmentPoolUpdatedDocument,
  MakeOfferDocument,
  MeDocument,
  OfferUpdatedDocument,
  PledgeDocument,
  RespondToOfferDocument,
  WithdrawOfferDocument,
  type InvestmentPoolUpdatedSubscription,
  type OfferUpdatedSubscription,
} from '../generated/graphql.js';
import { subscribe, type Feed } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import type { ServerProcess } from '../support/server-process.js';

let cluster: Cluster;
let databaseUrl: string;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  cluster = await startCluster({ OFFER_MIN_EXPIRY_SECONDS: '1' });
  ({ a, b, databaseUrl } = cluster);
});
afterAll(async () => {
  await cluster?.stop();
});

const gql = <R, V>(server: ServerProcess, doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string) =>
  execute(fetch, server.graphqlUrl, doc, variables, token);

/**
 * A competition whose `count` submissions each have their own founder, and a LIVE session with
 * them in its running order (inserted directly: the sessions module owns that API).
 */
async function stage(count: number) {
  const admin = await tokenFor({ sub: 'e2e-admin', role: 'ADMIN' });
  const { createCompetition } = dataOf(
    await gql(a, CreateCompetitionDocument, { input: { title: 'Shark night', votingMethod: 'SIMPLE' } }, admin),
  );
  const submissionIds: string[] = [];
  const founders: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const founderId = `e2e-founder-${randomUUID()}`;
    const founder = await tokenFor({ sub: founderId, role: 'FOUNDER' });
    dataOf(await gql(a, MeDocument, {}, founder));
    const { createSubmission } = dataOf(
      await gql(
        a,
        CreateSubmissionDocument,
        { input: { competitionId: createCompetition.id, title: `Pitch ${i}`, founderId } },
        admin,
      ),
    );
    submissionIds.push(createSubmission.id);
    founders.push(founder);
  }
  const sessionId = randomUUID();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query(
    `INSERT INTO "EventSession" ("id", "competitionId", "status", "submissionIds", "presentationSeconds", "pledgeBudget", "updatedAt")
     VALUES ($1, $2, 'LIVE', $3, 120, 1000, now())`,
    [sessionId, createCompetition.id, submissionIds],
  );
  await client.end();
  return { sessionId, submissionIds, founders };
}

type OfferFeed = Feed<OfferUpdatedSubscription>;
const offerEvents = (feed: OfferFeed) => feed.results.filter((r) => r.data).map((r) => r.data!.offerUpdated);

describe('offers across two instances', () => {
  it('deliver every transition made on A to graphql-ws on B and SSE on A, in seq order, expiring once', async () => {
    const { sessionId, submissionIds, founders } = await stage(3);
    const [s0, s1, warmUp] = submissionIds as [string, string, string];
    const [founder0] = founders as [string];
    const [judge1, judge2, warmer] = await Promise.all([
      tokenFor({ sub: 'e2e-judge-1', name: 'Mark', role: 'JUDGE' }),
      tokenFor({ sub: 'e2e-judge-2', name: 'Lori', role: 'JUDGE' }),
      tokenFor({ sub: 'e2e-warm-up-judge', role: 'JUDGE' }),
    ]);
    const feeds: OfferFeed[] = [
      subscribe('graphql-ws', b.url, OfferUpdatedDocument, { sessionId }),
      subscribe('sse', a.url, OfferUpdatedDocument, { sessionId }),
    ];
    try {
      // No snapshot on this stream: warm-up offers until both subscribers see one.
      let live = false;
      for (let attempt = 0; attempt < 40 && !live; attempt += 1) {
        const made = dataOf(
          await gql(
            a,
            MakeOfferDocument,
            { input: { sessionId, submissionId: warmUp, type: 'EQUITY', amount: 1, equityPercentage: 1 } },
            warmer,
          ),
        );
        dataOf(await gql(a, WithdrawOfferDocument, { offerId: made.makeOffer.id }, warmer));
        live = await Promise.all(
          feeds.map((feed) => feed.waitFor((r) => r.data?.offerUpdated.id === made.makeOffer.id, 500)),
        ).then(
          () => true,
          () => false,
        );
      }
      expect(live).toBe(true);

      const expected: [string, string][] = [];
      const made = async (token: string, input: Record<string, unknown>) => {
        const offer = dataOf(
          await gql(
            a,
            MakeOfferDocument,
            { input: { sessionId, type: 'EQUITY', amount: 100_000, equityPercentage: 10, ...input } as never },
            token,
          ),
        ).makeOffer;
        expected.push([offer.id, 'PENDING']);
        return offer;
      };
      const first = await made(judge1, { submissionId: s0 });
      const rival = await made(judge2, { submissionId: s0, amount: 80_000 });
      const counter = dataOf(
        await gql(
          a,
          RespondToOfferDocument,
          { input: { offerId: first.id, response: 'COUNTER', counterAmount: 150_000, counterEquityPercentage: 7.5 } },
          founder0,
        ),
      ).respondToOffer;
      expected.push([first.id, 'COUNTERED'], [counter.id, 'PENDING']);
      const accepted = dataOf(
        await gql(a, RespondToOfferDocument, { input: { offerId: counter.id, response: 'ACCEPT' } }, judge1),
      ).respondToOffer;
      expect(accepted.status).toBe('ACCEPTED');
      expected.push([counter.id, 'ACCEPTED'], [rival.id, 'REJECTED']); // accepting settles the submission
      const takenBack = await made(judge1, { submissionId: s1 });
      dataOf(await gql(a, WithdrawOfferDocument, { offerId: takenBack.id }, judge1));
      expected.push([takenBack.id, 'WITHDRAWN']);
      const shortLived = await made(judge2, { submissionId: s1, expiresInSeconds: 1 });
      expected.push([shortLived.id, 'EXPIRED']);

      const real = new Set(expected.map(([id]) => id));
      for (const feed of feeds) {
        await feed.waitFor(
          (r) => r.data?.offerUpdated.id === shortLived.id && r.data.offerUpdated.status === 'EXPIRED',
          10_000,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // both instances sweep again: still one EXPIRED
      for (const feed of feeds) {
        const events = offerEvents(feed);
        expect(events.filter((e) => real.has(e.id)).map((e) => [e.id, e.status])).toEqual(expected);
        // Every event of the session after the first one received, in order, none missing.
        const seqs = events.map((e) => e.seq!);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
        const counterEvent = events.find((e) => e.id === counter.id)!;
        expect(counterEvent.counterOf).toEqual({ id: first.id, status: 'COUNTERED' });
      }
      // Both transports carried the same events from the point both were live.
      const from = Math.max(...feeds.map((feed) => offerEvents(feed)[0]!.seq!));
      const fromCommon = (feed: OfferFeed) => offerEvents(feed).filter((e) => e.seq! >= from);
      expect(fromCommon(feeds[0]!)).toEqual(fromCommon(feeds[1]!));
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });

  it('stream pool totals from pledges on both instances to watchers on both, ending on the recount', async () => {
    const { sessionId, submissionIds } = await stage(3);
    const feeds: Feed<InvestmentPoolUpdatedSubscription>[] = [
      subscribe('graphql-ws', b.url, InvestmentPoolUpdatedDocument, { sessionId }),
      subscribe('sse', a.url, InvestmentPoolUpdatedDocument, { sessionId }),
      subscribe('graphql-sse', b.url, InvestmentPoolUpdatedDocument, { sessionId }),
    ];
    try {
      await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data?.investmentPoolUpdated.totalAmount === 0)));
      const backers = 40;
      const results = await Promise.all(
        Array.from({ length: backers }, async (_, i) => {
          const token = await tokenFor({ sub: `e2e-backer-${sessionId}-${i}` });
          const server = i % 2 === 0 ? a : b;
          // Each backer pledges twice on one instance: the second sets (not adds).
          await gql(
            server,
            PledgeDocument,
            { input: { sessionId, submissionId: submissionIds[i % 3]!, amount: 500 } },
            token,
          );
          return gql(
            server,
            PledgeDocument,
            { input: { sessionId, submissionId: submissionIds[i % 3]!, amount: 10 * (i + 1) } },
            token,
          );
        }),
      );
      expect(results.filter((r) => r.errors)).toEqual([]);
      const expectedTotal = Array.from({ length: backers }, (_, i) => 10 * (i + 1)).reduce((x, y) => x + y, 0);

      const { investmentPool } = dataOf(await gql(b, InvestmentPoolDocument, { sessionId }));
      expect(investmentPool.totalAmount).toBe(expectedTotal);
      expect(investmentPool.backers).toBe(backers);
      for (const feed of feeds) {
        const last = await feed.waitFor((r) => r.data?.investmentPoolUpdated.seq === investmentPool.seq, 15_000);
        expect(last.data!.investmentPoolUpdated.entries).toEqual(investmentPool.entries);
        const seqs = feed.results.map((r) => r.data!.investmentPoolUpdated.seq);
        for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      }
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });
});
