/**
 * Subscribers with the same document and variables share one execution: many graphql-ws
 * subscribers of one tally make one shared stream, each receives every update, and the last one
 * leaving ends it. Resuming subscribers of an event stream replay their own past, then join it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CloseCompetitionDocument,
  ResumeReactionEventsDocument,
  ResumeReactionsDocument,
  SendReactionDocument,
  TallyUntilClosedDocument,
  TallyUpdatedDocument,
} from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { subscribe, type Feed, type Transport } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { openCompetition } from '../e2e/support.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ TALLY_FLUSH_MS: '30', REACTION_WINDOW_MS: '40' }, { postgres: true });
});
afterAll(async () => {
  await t?.stop();
});

it('shares one execution among subscribers of the same tally, per distinct variables', async () => {
  const one = await openCompetition(t.graphqlUrl, 2);
  const two = await openCompetition(t.graphqlUrl, 1);
  const feeds = [
    ...Array.from({ length: 30 }, () =>
      subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId: one.competitionId }),
    ),
    ...Array.from({ length: 5 }, () =>
      subscribe('sse', t.url, TallyUpdatedDocument, { competitionId: one.competitionId }),
    ),
    subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId: two.competitionId }),
  ];
  try {
    await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data !== undefined)));
    expect(t.app.sharedSubscriptions.stats()).toEqual({ streams: 2, subscribers: 36 });

    for (let i = 0; i < 6; i += 1) {
      const token = await tokenFor({ sub: `shared-${i}` });
      dataOf(
        await execute(
          fetch,
          t.graphqlUrl,
          CastVoteDocument,
          { input: { competitionId: one.competitionId, submissionId: one.submissionIds[i % 2]! } },
          token,
        ),
      );
    }
    const finals = await Promise.all(
      feeds.slice(0, 35).map((feed) => feed.waitFor((r) => r.data?.tallyUpdated.totalVotes === 6)),
    );
    // One execution: every subscriber holds the very same final update.
    expect(new Set(finals.map((r) => JSON.stringify(r.data))).size).toBe(1);
  } finally {
    await Promise.all(feeds.map((feed) => feed.close()));
  }
  await expect
    .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
    .toEqual({ streams: 0, subscribers: 0 });
});

it('gives a late subscriber the latest standings first', async () => {
  const { competitionId, submissionIds } = await openCompetition(t.graphqlUrl, 1);
  const early = subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId });
  try {
    await early.waitFor((r) => r.data !== undefined);
    dataOf(
      await execute(
        fetch,
        t.graphqlUrl,
        CastVoteDocument,
        { input: { competitionId, submissionId: submissionIds[0]! } },
        await tokenFor({ sub: 'late-1' }),
      ),
    );
    await early.waitFor((r) => r.data?.tallyUpdated.totalVotes === 1);
    const late = subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId });
    try {
      const first = await late.waitFor((r) => r.data !== undefined);
      expect(first.data?.tallyUpdated.totalVotes).toBe(1);
    } finally {
      await late.close();
    }
  } finally {
    await early.close();
  }
});

it('ends the shared stream for every subscriber after the final standings when the competition closes', async () => {
  const { competitionId, submissionIds } = await openCompetition(t.graphqlUrl, 2);
  const feeds = [
    ...Array.from({ length: 20 }, () => subscribe('graphql-ws', t.url, TallyUntilClosedDocument, { competitionId })),
    ...Array.from({ length: 5 }, () => subscribe('sse', t.url, TallyUntilClosedDocument, { competitionId })),
  ];
  try {
    await Promise.all(feeds.map((feed) => feed.waitFor((r) => r.data !== undefined)));
    expect(t.app.sharedSubscriptions.stats()).toEqual({ streams: 1, subscribers: 25 });
    for (let i = 0; i < 4; i += 1) {
      const token = await tokenFor({ sub: `closing-shared-${i}` });
      dataOf(
        await execute(
          fetch,
          t.graphqlUrl,
          CastVoteDocument,
          { input: { competitionId, submissionId: submissionIds[i % 2]! } },
          token,
        ),
      );
    }
    const admin = await tokenFor({ sub: 'e2e-admin', role: 'ADMIN' });
    dataOf(await execute(fetch, t.graphqlUrl, CloseCompetitionDocument, { id: competitionId }, admin));
    await Promise.all(feeds.map((feed) => feed.ended));
    const finals = feeds.map((feed) => feed.results.at(-1)?.data);
    expect(finals[0]?.tallyUpdated).toMatchObject({ status: 'CLOSED', totalVotes: 4 });
    expect(new Set(finals.map((f) => JSON.stringify(f))).size).toBe(1); // the same final update for everyone
    expect(feeds.every((feed) => feed.results.every((r) => !r.errors))).toBe(true);
  } finally {
    await Promise.all(feeds.map((feed) => feed.close()));
  }
  await expect
    .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
    .toEqual({ streams: 0, subscribers: 0 });
});

it('resuming subscribers of an event stream replay their own past, then join the one shared stream with no gap or duplicate', async () => {
  const { competitionId, submissionIds } = await openCompetition(t.graphqlUrl, 1);
  const { id: sessionId } = await t.app.database.prisma.eventSession.create({
    data: { competitionId, submissionIds, presentationSeconds: 120, status: 'LIVE' },
  });
  const reactor = await tokenFor({ sub: 'shared-reactor' });
  let produced = 0;
  /** One burst (one seq): a reaction, then its window's commit. */
  const produce = async (): Promise<void> => {
    dataOf(
      await execute(
        fetch,
        t.graphqlUrl,
        SendReactionDocument,
        { input: { sessionId, type: 'CLAP', intensity: 1 } },
        reactor,
      ),
    );
    produced += 1;
    await expect
      .poll(
        async () =>
          dataOf(await execute(fetch, t.graphqlUrl, ResumeReactionEventsDocument, { sessionId, first: 1 }, reactor))
            .reactionEvents.latestSeq,
        { timeout: 5_000, interval: 20 },
      )
      .toBe(produced);
  };
  const seqs = (feed: Feed<{ reactions: { seq: number } }>) => feed.results.map((r) => r.data?.reactions.seq ?? r);
  const watch = (transport: Transport, afterSeq: number | null) => ({
    afterSeq,
    feed: subscribe(transport, t.url, ResumeReactionsDocument, { sessionId, afterSeq }),
  });

  // A live watcher makes the shared stream; three events go by.
  const live = watch('graphql-ws', null);
  const feeds = [live];
  try {
    await expect.poll(() => t.app.sharedSubscriptions.stats()).toEqual({ streams: 1, subscribers: 1 });
    for (let i = 0; i < 3; i += 1) await produce();
    // Resuming watchers on every transport: behind the stream (replaying), and at its position.
    feeds.push(
      watch('graphql-ws', 0),
      watch('graphql-ws', 2),
      watch('sse', 1),
      watch('graphql-sse', 0),
      watch('graphql-ws', 3),
    );
    await Promise.all(
      feeds
        .filter((f) => f.afterSeq !== null && f.afterSeq < 3)
        .map((f) => f.feed.waitFor((r) => r.data?.reactions.seq === 3)),
    );
    for (let i = 0; i < 3; i += 1) await produce();
    // A late one replays six events while the stream is live.
    feeds.push(watch('graphql-ws', 0));
    await Promise.all(feeds.map((f) => f.feed.waitFor((r) => r.data?.reactions.seq === 6)));
    await produce();
    await Promise.all(feeds.map((f) => f.feed.waitFor((r) => r.data?.reactions.seq === 7)));

    // Each got exactly the seqs after its cursor, whoever delivered them...
    for (const { afterSeq, feed } of feeds) {
      const from = afterSeq ?? 0;
      expect(seqs(feed)).toEqual(Array.from({ length: 7 - from }, (_, i) => from + 1 + i));
    }
    // ...and every one of them is on the one shared execution now, none on a replay of its own.
    expect(t.app.sharedSubscriptions.stats()).toEqual({ streams: 1, subscribers: feeds.length });
  } finally {
    await Promise.all(feeds.map((f) => f.feed.close()));
  }
  await expect
    .poll(() => t.app.sharedSubscriptions.stats(), { timeout: 5_000 })
    .toEqual({ streams: 0, subscribers: 0 });
});
