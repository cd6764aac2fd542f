/**
 * Live channels on both backends: publishing (ADMIN mutation and server-side), who may read and
 * write what, bounded history with catch-up by seq, a subscription that replays then goes live
 * with no gap and no duplicate while events are being published, and the competition activity
 * feed fed from the commit points.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  ChannelEventDocument,
  ChannelEventsDocument,
  CloseCompetitionDocument,
  ControlSessionDocument,
  CreateCompetitionDocument,
  CreateSessionDocument,
  CreateSubmissionDocument,
  MakeOfferDocument,
  MeDocument,
  OpenCompetitionDocument,
  PublishToChannelDocument,
} from '../generated/graphql.js';
import { createChannelsService } from '../../src/modules/channels/channels.service.js';
import { useTestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe, untilSentinel } from '../support/clients.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(backends)('channels on $name', (backend) => {
  const t = useTestApp(backend);
  let admin: string;
  let audience: string;
  let n = 0;
  const gql = t.gql;
  const channelName = (prefix = 'test') => `${prefix}:${(n += 1)}-${Date.now()}`;

  async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await sleep(50);
    }
  }

  beforeAll(async () => {
    [admin, audience] = await Promise.all([
      tokenFor({ sub: 'chan-admin', name: 'Ada', role: 'ADMIN' }),
      tokenFor({ sub: 'chan-viewer', name: 'Vi' }),
    ]);
  });

  it('publishes (ADMIN) and reads history after a seq, in pages', async () => {
    const channel = channelName();
    for (let i = 1; i <= 5; i += 1) {
      const published = dataOf(
        await gql(PublishToChannelDocument, { channel, type: 'score.updated', data: { i } }, admin),
      ).publishToChannel;
      expect(published).toMatchObject({ channel, seq: i, type: 'score.updated', data: { i } });
    }
    // Public: anonymous readers too.
    const page = dataOf(await gql(ChannelEventsDocument, { channel, afterSeq: 2, first: 2 })).channelEvents;
    expect(page).toMatchObject({ channel, latestSeq: 5, oldestSeq: 1, missed: false, hasMore: true });
    expect(page.events.map((e) => [e.seq, e.data])).toEqual([
      [3, { i: 3 }],
      [4, { i: 4 }],
    ]);
    const rest = dataOf(await gql(ChannelEventsDocument, { channel, afterSeq: 4 })).channelEvents;
    expect(rest.events.map((e) => e.seq)).toEqual([5]);
    expect(rest.hasMore).toBe(false);
    const empty = dataOf(await gql(ChannelEventsDocument, { channel: channelName('never') })).channelEvents;
    expect(empty).toMatchObject({ latestSeq: 0, oldestSeq: null, events: [], missed: false, hasMore: false });
  });

  it('decides who reads and writes which channel, and validates names, types and data', async () => {
    const channel = channelName();
    expect(codesOf(await gql(PublishToChannelDocument, { channel, type: 'T' }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(PublishToChannelDocument, { channel, type: 'T' }, audience))).toEqual(['FORBIDDEN']);
    expect(codesOf(await gql(PublishToChannelDocument, { channel: 'activity:abc', type: 'T' }, admin))).toEqual([
      'FORBIDDEN',
    ]);
    const badName = await gql(PublishToChannelDocument, { channel: 'Bad Name', type: 'T' }, admin);
    expect(codesOf(badName)).toEqual(['BAD_USER_INPUT']);
    expect(badName.errors?.[0]?.extensions?.['field']).toBe('channel');
    expect(codesOf(await gql(PublishToChannelDocument, { channel, type: 'has space' }, admin))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(
      codesOf(await gql(PublishToChannelDocument, { channel, type: 'T', data: { s: 'x'.repeat(17_000) } }, admin)),
    ).toEqual(['BAD_USER_INPUT']);
    expect(codesOf(await gql(ChannelEventsDocument, { channel: 'x'.repeat(101) }))).toEqual(['BAD_USER_INPUT']);
    expect(codesOf(await gql(ChannelEventsDocument, { channel, first: 0 }))).toEqual(['BAD_USER_INPUT']);

    const ops = 'admin:ops';
    dataOf(await gql(PublishToChannelDocument, { channel: ops, type: 'T', data: { secret: true } }, admin));
    expect(codesOf(await gql(ChannelEventsDocument, { channel: ops }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(ChannelEventsDocument, { channel: ops }, audience))).toEqual(['FORBIDDEN']);
    expect(dataOf(await gql(ChannelEventsDocument, { channel: ops }, admin)).channelEvents.events).toHaveLength(1);
    const denied = subscribe('sse', t.url, ChannelEventDocument, { channel: ops }, audience);
    try {
      const result = await denied.waitFor((r) => (r.errors?.length ?? 0) > 0);
      expect(result.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    } finally {
      await denied.close();
    }
  });

  it('keeps the last N events per channel and tells a late reader it missed some', async () => {
    const small = createChannelsService({ prisma: t.app.database.prisma, bus: t.app.services.bus, historyLimit: 5 });
    const channel = channelName();
    for (let i = 1; i <= 12; i += 1) await small.publish(channel, 'tick', { i });
    expect(await t.app.database.prisma.channelEvent.count({ where: { channel } })).toBe(5);
    const late = dataOf(await gql(ChannelEventsDocument, { channel, afterSeq: 3 })).channelEvents;
    expect(late).toMatchObject({ latestSeq: 12, oldestSeq: 8, missed: true });
    expect(late.events.map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
    const current = dataOf(await gql(ChannelEventsDocument, { channel, afterSeq: 7 })).channelEvents;
    expect(current.missed).toBe(false);
  });

  it('replays after afterSeq, then goes live: every seq once, in order, while 150 are published concurrently', async () => {
    const channel = channelName();
    const channels = t.app.services.channels;
    for (let i = 1; i <= 40; i += 1) await channels.publish(channel, 'before', { i });
    const feed = subscribe('graphql-ws', t.url, ChannelEventDocument, { channel, afterSeq: 10 }, audience);
    const liveOnly = subscribe('graphql-ws', t.url, ChannelEventDocument, { channel }, audience);
    try {
      await Promise.all(Array.from({ length: 150 }, (_, i) => channels.publish(channel, 'during', { i })));
      // The live-only stream may have gone live after all of those: publish until it gets one.
      let last = 190;
      for (let attempt = 0; ; attempt += 1) {
        last = (await channels.publish(channel, 'after', { attempt }))!.seq;
        try {
          await liveOnly.waitFor((r) => r.data?.channelEvent.seq === last, 500);
          break;
        } catch (error) {
          if (attempt >= 40) throw error;
        }
      }
      await feed.waitFor((r) => r.data?.channelEvent.seq === last, 20_000);
      // A duplicate would arrive before the next event on the channel.
      let sentinel = 0;
      const before = await untilSentinel(
        feed,
        async () => (sentinel = (await channels.publish(channel, 'sentinel', {}))!.seq),
        (r) => r.data?.channelEvent.seq === sentinel,
      );
      expect(sentinel).toBe(last + 1);
      const seqs = before.map((r) => r.data!.channelEvent.seq);
      expect(seqs).toEqual(Array.from({ length: last - 10 }, (_, i) => i + 11));
      expect(feed.results.length).toBe(seqs.length + 1);
      await liveOnly.waitFor((r) => r.data?.channelEvent.seq === sentinel);
      // Without afterSeq: live only, a gapless, strictly increasing tail ending at the last one.
      const tail = liveOnly.results.map((r) => r.data!.channelEvent.seq);
      expect(tail).toEqual(Array.from({ length: tail.length }, (_, i) => sentinel + 1 - tail.length + i));
      expect(tail[0]).toBeGreaterThan(40);
    } finally {
      await Promise.all([feed.close(), liveOnly.close()]);
    }
  });

  it('feeds activity:<competitionId> from competitions, votes, offers and sessions', async () => {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Feed', votingMethod: 'SIMPLE' } }, admin),
    );
    const competitionId = createCompetition.id;
    const channel = `activity:${competitionId}`;
    const founder = await tokenFor({ sub: `feed-founder-${competitionId}`, name: 'F', role: 'FOUNDER' });
    dataOf(await gql(MeDocument, {}, founder));
    const { createSubmission } = dataOf(
      await gql(
        CreateSubmissionDocument,
        { input: { competitionId, title: 'One', founderId: `feed-founder-${competitionId}` } },
        admin,
      ),
    );
    const feed = subscribe('sse', t.url, ChannelEventDocument, { channel, afterSeq: 0 });
    try {
      dataOf(await gql(OpenCompetitionDocument, { id: competitionId }, admin));
      const voters = await Promise.all(
        Array.from({ length: 105 }, (_, i) => tokenFor({ sub: `feed-voter-${competitionId}-${i}` })),
      );
      for (let i = 0; i < voters.length; i += 15) {
        await Promise.all(
          voters
            .slice(i, i + 15)
            .map(async (token) =>
              dataOf(
                await gql(CastVoteDocument, { input: { competitionId, submissionId: createSubmission.id } }, token),
              ),
            ),
        );
      }
      const { createSession } = dataOf(
        await gql(
          CreateSessionDocument,
          { input: { competitionId, submissionIds: [createSubmission.id], presentationSeconds: 60 } },
          admin,
        ),
      );
      dataOf(await gql(ControlSessionDocument, { input: { sessionId: createSession.id, action: 'START' } }, admin));
      const judge = await tokenFor({ sub: `feed-judge-${competitionId}`, name: 'J', role: 'JUDGE' });
      const offer = dataOf(
        await gql(
          MakeOfferDocument,
          {
            input: {
              sessionId: createSession.id,
              submissionId: createSubmission.id,
              type: 'LOAN',
              amount: 10,
              interestRatePercent: 5,
              termMonths: 12,
            },
          },
          judge,
        ),
      ).makeOffer;
      // The tally publisher announces the milestone after its next window.
      await poll(
        async () => dataOf(await gql(ChannelEventsDocument, { channel, first: 100 })).channelEvents.events,
        (events) => events.some((e) => e.type === 'VOTES_MILESTONE'),
      );
      dataOf(await gql(CloseCompetitionDocument, { id: competitionId }, admin));

      const history = await poll(
        async () => dataOf(await gql(ChannelEventsDocument, { channel, first: 100 })).channelEvents.events,
        (events) => events.some((e) => e.type === 'COMPETITION_CLOSED'),
      );
      const types = history.map((e) => e.type);
      expect(types[0]).toBe('COMPETITION_OPENED');
      expect(types.filter((x) => x === 'VOTES_MILESTONE')).toEqual(['VOTES_MILESTONE']);
      expect(history.find((e) => e.type === 'VOTES_MILESTONE')?.data).toMatchObject({ competitionId, milestone: 100 });
      expect(history.find((e) => e.type === 'OFFER_MADE')?.data).toMatchObject({
        offerId: offer.id,
        submissionId: createSubmission.id,
        amount: 10,
      });
      expect(history.find((e) => e.type === 'SESSION_UPDATED')?.data).toMatchObject({
        sessionId: createSession.id,
        status: 'LIVE',
      });
      expect(types.at(-1)).toBe('COMPETITION_CLOSED');
      expect(history.map((e) => e.seq)).toEqual(history.map((_, i) => i + 1));

      // The subscriber saw the same events, in the same order.
      await feed.waitFor((r) => r.data?.channelEvent.type === 'COMPETITION_CLOSED');
      expect(feed.results.map((r) => r.data!.channelEvent.seq)).toEqual(history.map((e) => e.seq));
    } finally {
      await feed.close();
    }
  });
});
