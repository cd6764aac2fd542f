/**
 * Resume after a reconnect, for every stream whose events carry a per-topic seq, on both backends
 * and over graphql-ws and SSE: with afterSeq, every event after it exactly once and in order, then
 * the live ones; the polling query pages through the same events; RESYNC_REQUIRED at once when the
 * cursor is ahead, or when the events are no longer kept (RESUME_WINDOW_SECONDS); over SSE every
 * `next` carries `id: <seq>` and a request with `Last-Event-ID` resumes as afterSeq would.
 *
 * Each stream is one row of STREAMS: how to make a fresh topic, produce its next event, and read it.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CreateCompetitionDocument,
  CreateConversationDocument,
  CreateSubmissionDocument,
  MakeOfferDocument,
  MarkConversationReadDocument,
  PublishToChannelDocument,
  ChannelEventDocument,
  ResumeFraudAlertEventsDocument,
  ResumeFraudAlertsDocument,
  ResumeMessageEventsDocument,
  ResumeMessagesDocument,
  ResumeNotificationEventsDocument,
  ResumeNotificationsDocument,
  ResumeOfferEventsDocument,
  ResumeOffersDocument,
  ResumeReactionEventsDocument,
  ResumeReactionsDocument,
  ResumeReadReceiptEventsDocument,
  ResumeReadReceiptsDocument,
  SendMessageDocument,
  SendNotificationDocument,
  SendReactionDocument,
} from '../generated/graphql.js';
import { createHistoryPruner } from '../../src/realtime/event-log.js';
import { useTestApp, type AppFixture } from '../support/app.js';
import { backends, embedded } from '../support/backends.js';
import { subscribe, type Feed, type Transport } from '../support/clients.js';
import { codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';

type AnyDoc = TypedDocumentNode<Record<string, unknown>, Record<string, unknown>>;
interface Page {
  events: { seq?: number | null }[];
  cursor: number;
  latestSeq: number;
  hasMore: boolean;
}

/** One topic of one stream, ready to produce events and be read. */
interface Topic {
  /** Variables of the subscription and the polling query (without afterSeq/first). */
  vars: Record<string, unknown>;
  /** The subscriber's token. */
  token: string;
  /** Commits the topic's next event; resolves once it is committed. */
  produce(): Promise<void>;
}

interface StreamCase {
  name: string;
  subscription: AnyDoc;
  poll: AnyDoc;
  /** The root field of both. */
  field: string;
  pollField: string;
  /** Kept only RESUME_WINDOW_SECONDS (the event log), or as long as the domain's own table. */
  windowed: boolean;
  topic(t: AppFixture, n: number): Promise<Topic>;
}

const gqlOn =
  (t: AppFixture) =>
  <R, V>(doc: TypedDocumentNode<R, V>, variables: V, token?: string) =>
    execute(fetch, t.graphqlUrl, doc, variables, token);

let serial = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(serial += 1)}`;

async function liveSession(
  t: AppFixture,
  admin: string,
): Promise<{ sessionId: string; competitionId: string; submissionId: string }> {
  const gql = gqlOn(t);
  const founderId = unique('founder');
  await gql(ResumeNotificationEventsDocument, {}, await tokenFor({ sub: founderId, role: 'FOUNDER' })); // the founder exists
  const { createCompetition } = dataOf(
    await gql(CreateCompetitionDocument, { input: { title: unique('resume'), votingMethod: 'SIMPLE' } }, admin),
  );
  const { createSubmission } = dataOf(
    await gql(
      CreateSubmissionDocument,
      { input: { competitionId: createCompetition.id, title: 'Pitch', founderId } },
      admin,
    ),
  );
  const session = await t.app.database.prisma.eventSession.create({
    data: {
      competitionId: createCompetition.id,
      submissionIds: [createSubmission.id],
      presentationSeconds: 120,
      status: 'LIVE',
    },
  });
  return { sessionId: session.id, competitionId: createCompetition.id, submissionId: createSubmission.id };
}

/** Waits until the poll query's latestSeq reaches `seq` (an event committed by a timer, e.g. a reaction window). */
async function untilLatest(t: AppFixture, c: StreamCase, topic: Topic, seq: number): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const page = dataOf(await gqlOn(t)(c.poll, { ...topic.vars }, topic.token))[c.pollField] as Page;
    if (page.latestSeq >= seq) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${c.name}: seq ${seq} was never committed`);
}

const admins = new Map<AppFixture, string>();
const adminOf = async (t: AppFixture) => {
  if (!admins.has(t)) admins.set(t, await tokenFor({ sub: 'resume-admin', name: 'Ada', role: 'ADMIN' }));
  return admins.get(t)!;
};

const STREAMS: StreamCase[] = [
  {
    name: 'reactions',
    subscription: ResumeReactionsDocument as unknown as AnyDoc,
    poll: ResumeReactionEventsDocument as unknown as AnyDoc,
    field: 'reactions',
    pollField: 'reactionEvents',
    windowed: true,
    async topic(t) {
      const { sessionId } = await liveSession(t, await adminOf(t));
      const token = await tokenFor({ sub: unique('reactor') });
      let produced = 0;
      const topic: Topic = {
        vars: { sessionId },
        token,
        async produce() {
          dataOf(await gqlOn(t)(SendReactionDocument, { input: { sessionId, type: 'CLAP', intensity: 1 } }, token));
          produced += 1;
          // A burst is committed when its window closes: wait for it, so each call is one event.
          await untilLatest(t, STREAMS[0]!, topic, produced);
        },
      };
      return topic;
    },
  },
  {
    name: 'offerUpdated',
    subscription: ResumeOffersDocument as unknown as AnyDoc,
    poll: ResumeOfferEventsDocument as unknown as AnyDoc,
    field: 'offerUpdated',
    pollField: 'offerEvents',
    windowed: true,
    async topic(t) {
      const { sessionId, submissionId } = await liveSession(t, await adminOf(t));
      const viewer = await tokenFor({ sub: unique('viewer') });
      return {
        vars: { sessionId },
        token: viewer,
        async produce() {
          // One open offer per judge and submission: a new judge each time (one event per offer).
          const judge = await tokenFor({ sub: unique('judge'), role: 'JUDGE' });
          dataOf(
            await gqlOn(t)(
              MakeOfferDocument,
              { input: { sessionId, submissionId, type: 'LOAN', amount: 1000 } },
              judge,
            ),
          );
        },
      };
    },
  },
  {
    name: 'messageAdded',
    subscription: ResumeMessagesDocument as unknown as AnyDoc,
    poll: ResumeMessageEventsDocument as unknown as AnyDoc,
    field: 'messageAdded',
    pollField: 'messageEvents',
    windowed: false,
    async topic(t) {
      const [reader, writer] = [unique('reader'), unique('writer')];
      const [readerToken, writerToken] = await Promise.all([tokenFor({ sub: reader }), tokenFor({ sub: writer })]);
      // Both users exist once they made a request.
      await Promise.all(
        [readerToken, writerToken].map((token) => gqlOn(t)(ResumeNotificationEventsDocument, {}, token)),
      );
      const { createConversation } = dataOf(
        await gqlOn(t)(CreateConversationDocument, { participantIds: [reader] }, writerToken),
      );
      let i = 0;
      return {
        vars: { conversationId: createConversation.id },
        token: readerToken,
        async produce() {
          dataOf(
            await gqlOn(t)(
              SendMessageDocument,
              { input: { conversationId: createConversation.id, body: `m${(i += 1)}` } },
              writerToken,
            ),
          );
        },
      };
    },
  },
  {
    name: 'readReceiptUpdated',
    subscription: ResumeReadReceiptsDocument as unknown as AnyDoc,
    poll: ResumeReadReceiptEventsDocument as unknown as AnyDoc,
    field: 'readReceiptUpdated',
    pollField: 'readReceiptEvents',
    windowed: true,
    async topic(t) {
      const [watcher, reader] = [unique('watcher'), unique('reader')];
      const [watcherToken, readerToken] = await Promise.all([tokenFor({ sub: watcher }), tokenFor({ sub: reader })]);
      await Promise.all(
        [watcherToken, readerToken].map((token) => gqlOn(t)(ResumeNotificationEventsDocument, {}, token)),
      );
      const { createConversation } = dataOf(
        await gqlOn(t)(CreateConversationDocument, { participantIds: [reader] }, watcherToken),
      );
      const conversationId = createConversation.id;
      return {
        vars: { conversationId },
        token: watcherToken,
        async produce() {
          // The watcher writes a message, the reader reads up to it: one receipt event.
          const { sendMessage } = dataOf(
            await gqlOn(t)(SendMessageDocument, { input: { conversationId, body: 'read me' } }, watcherToken),
          );
          dataOf(
            await gqlOn(t)(
              MarkConversationReadDocument,
              { conversationId, upToMessageId: sendMessage.id },
              readerToken,
            ),
          );
        },
      };
    },
  },
  {
    name: 'notificationAdded',
    subscription: ResumeNotificationsDocument,
    poll: ResumeNotificationEventsDocument,
    field: 'notificationAdded',
    pollField: 'notificationEvents',
    windowed: false,
    async topic(t) {
      const userId = unique('notified');
      const token = await tokenFor({ sub: userId });
      await gqlOn(t)(ResumeNotificationEventsDocument, {}, token);
      const admin = await adminOf(t);
      let i = 0;
      return {
        vars: {},
        token,
        async produce() {
          dataOf(
            await gqlOn(t)(
              SendNotificationDocument,
              { input: { userId, type: 'resume', title: `n${(i += 1)}` } },
              admin,
            ),
          );
        },
      };
    },
  },
  {
    name: 'fraudAlertRaised',
    subscription: ResumeFraudAlertsDocument,
    poll: ResumeFraudAlertEventsDocument,
    field: 'fraudAlertRaised',
    pollField: 'fraudAlertEvents',
    windowed: true,
    async topic(t) {
      const admin = await adminOf(t);
      const { competitionId } = await liveSession(t, admin);
      return {
        vars: { competitionId },
        token: admin,
        async produce() {
          // One alert per user, rule and action per minute: a new user each time.
          t.app.services.fraud.raise({
            userId: unique('suspect'),
            competitionId,
            sessionId: null,
            rule: 'RAPID_VOTING',
            score: 75,
            action: 'FLAG',
            details: {},
          });
          await t.app.services.fraud.drain();
        },
      };
    },
  },
];

const seqsOf = (feed: Feed<Record<string, unknown>>, field: string): number[] =>
  feed.results.filter((r) => r.data).map((r) => (r.data![field] as { seq: number }).seq);

const firstCode = async (feed: Feed<Record<string, unknown>>) => {
  try {
    const first = await feed.waitFor(() => true);
    return [first.errors?.[0]?.extensions?.['code'], first.errors?.[0]?.extensions?.['reason']];
  } finally {
    await feed.close();
  }
};

describe.each(backends)('resume on $name', (backend) => {
  const t = useTestApp(backend, { REACTION_WINDOW_MS: '40' });

  describe.each(STREAMS)('$name', (c) => {
    it.each(['graphql-ws', 'sse'] as Transport[])(
      'over %s: every event after afterSeq once, in order, then live ones',
      async (transport) => {
        const topic = await c.topic(t, 0);
        for (let i = 0; i < 5; i += 1) await topic.produce();
        const feed = subscribe(transport, t.url, c.subscription, { ...topic.vars, afterSeq: 2 }, topic.token);
        try {
          await feed.waitFor(() => seqsOf(feed, c.field).includes(5), 15_000);
          await topic.produce();
          await topic.produce();
          await feed.waitFor(() => seqsOf(feed, c.field).includes(7), 15_000);
          expect(seqsOf(feed, c.field)).toEqual([3, 4, 5, 6, 7]);
          expect(feed.results.filter((r) => r.errors)).toEqual([]);
        } finally {
          await feed.close();
        }
      },
    );

    it('polls the same events in pages, oldest first; without a cursor, none and the latest seq', async () => {
      const topic = await c.topic(t, 0);
      for (let i = 0; i < 5; i += 1) await topic.produce();
      const poll = async (vars: Record<string, unknown>) =>
        dataOf(await gqlOn(t)(c.poll, { ...topic.vars, ...vars }, topic.token))[c.pollField] as Page;
      const first = await poll({ afterSeq: 1, first: 2 });
      expect([first.events.map((e) => e.seq), first.cursor, first.latestSeq, first.hasMore]).toEqual([
        [2, 3],
        3,
        5,
        true,
      ]);
      const rest = await poll({ afterSeq: first.cursor });
      expect([rest.events.map((e) => e.seq), rest.cursor, rest.hasMore]).toEqual([[4, 5], 5, false]);
      expect(await poll({})).toMatchObject({ events: [], cursor: 5, latestSeq: 5, hasMore: false });
      expect(codesOf(await gqlOn(t)(c.poll, { ...topic.vars, afterSeq: 1, first: 0 }, topic.token))).toEqual([
        'BAD_USER_INPUT',
      ]);
    });

    it('refuses a cursor ahead of the stream at once, on the subscription and the poll', async () => {
      const topic = await c.topic(t, 0);
      await topic.produce();
      expect(
        await firstCode(subscribe('graphql-ws', t.url, c.subscription, { ...topic.vars, afterSeq: 9 }, topic.token)),
      ).toEqual(['RESYNC_REQUIRED', 'AHEAD']);
      expect(
        await firstCode(subscribe('sse', t.url, c.subscription, { ...topic.vars, afterSeq: 9 }, topic.token)),
      ).toEqual(['RESYNC_REQUIRED', 'AHEAD']);
      const polled = await gqlOn(t)(c.poll, { ...topic.vars, afterSeq: 9 }, topic.token);
      expect(polled.errors?.[0]?.extensions).toMatchObject({
        code: 'RESYNC_REQUIRED',
        retryable: false,
        reason: 'AHEAD',
        latestSeq: 1,
      });
      expect(codesOf(await gqlOn(t)(c.poll, { ...topic.vars, afterSeq: -1 }, topic.token))).toEqual(['BAD_USER_INPUT']);
    });

    it('over SSE, every event carries id: <seq>, and Last-Event-ID resumes after it', async () => {
      const topic = await c.topic(t, 0);
      for (let i = 0; i < 4; i += 1) await topic.produce();
      const abort = new AbortController();
      const response = await fetch(t.graphqlUrl, {
        method: 'POST',
        signal: abort.signal,
        headers: {
          accept: 'text/event-stream',
          'content-type': 'application/json',
          authorization: `Bearer ${topic.token}`,
          // An EventSource reconnecting after event 2: no afterSeq in the request it repeats.
          'last-event-id': '2',
        },
        body: JSON.stringify({ query: print(c.subscription), variables: topic.vars }),
      });
      const frames: { id?: string; seq: number }[] = [];
      let buffer = '';
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += Buffer.from(chunk).toString('utf8');
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (!frame.startsWith('event: next')) continue;
            const data = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as { data: Record<string, { seq: number }> };
            frames.push({ id: /^id: (.*)$/m.exec(frame)?.[1], seq: data.data[c.field]!.seq });
          }
          if (frames.length >= 2) break;
        }
      } finally {
        abort.abort();
      }
      expect(frames).toEqual([
        { id: '3', seq: 3 },
        { id: '4', seq: 4 },
      ]);
    });
  });

  it('channelEvent resumes the same way (its history is the channel table)', async () => {
    const admin = await adminOf(t);
    const channel = `resume:${unique('c')}`;
    for (let i = 0; i < 5; i += 1)
      dataOf(await gqlOn(t)(PublishToChannelDocument, { channel, type: 'tick', data: { i } }, admin));
    const feed = subscribe('graphql-ws', t.url, ChannelEventDocument, { channel, afterSeq: 3 }, admin);
    try {
      await feed.waitFor((r) => r.data?.channelEvent.seq === 5);
      dataOf(await gqlOn(t)(PublishToChannelDocument, { channel, type: 'tick', data: {} }, admin));
      await feed.waitFor((r) => r.data?.channelEvent.seq === 6);
      expect(feed.results.map((r) => r.data?.channelEvent.seq)).toEqual([4, 5, 6]);
    } finally {
      await feed.close();
    }
    expect(await firstCode(subscribe('sse', t.url, ChannelEventDocument, { channel, afterSeq: 7 }, admin))).toEqual([
      'RESYNC_REQUIRED',
      'AHEAD',
    ]);
  });
});

describe('resume beyond RESUME_WINDOW_SECONDS', () => {
  const t = useTestApp(embedded, { RESUME_WINDOW_SECONDS: '1', REACTION_WINDOW_MS: '40' });
  /** Per stream, a topic with 3 events, all older than the window: one wait for every stream. */
  const aged = new Map<string, Topic>();
  beforeAll(async () => {
    for (const c of STREAMS) {
      const topic = await c.topic(t, 0);
      for (let i = 0; i < 3; i += 1) await topic.produce();
      aged.set(c.name, topic);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_200));
  });

  it.each(STREAMS.map((c) => [c.name, c] as const))(
    '%s: RESYNC_REQUIRED (NOT_KEPT) for events older than the window, unless the stream keeps its own table',
    async (_name, c) => {
      const topic = aged.get(c.name)!;
      const feed = subscribe('graphql-ws', t.url, c.subscription, { ...topic.vars, afterSeq: 1 }, topic.token);
      if (c.windowed) {
        expect(await firstCode(feed)).toEqual(['RESYNC_REQUIRED', 'NOT_KEPT']);
        expect(
          (await gqlOn(t)(c.poll, { ...topic.vars, afterSeq: 1 }, topic.token)).errors?.[0]?.extensions,
        ).toMatchObject({
          code: 'RESYNC_REQUIRED',
          reason: 'NOT_KEPT',
        });
        // The latest seq is still a valid cursor: nothing after it was missed.
        const page = dataOf(await gqlOn(t)(c.poll, { ...topic.vars, afterSeq: 3 }, topic.token))[c.pollField] as Page;
        expect(page).toMatchObject({ events: [], cursor: 3, hasMore: false });
      } else {
        try {
          await feed.waitFor(() => seqsOf(feed, c.field).includes(3));
          expect(seqsOf(feed, c.field)).toEqual([2, 3]);
        } finally {
          await feed.close();
        }
      }
    },
  );

  it('the pruner deletes log rows past the window (plus a margin), and nothing newer', async () => {
    const prisma = t.app.database.prisma;
    const topic = unique('prune:test');
    await prisma.$executeRaw`INSERT INTO "EventLog" ("topic", "seq", "data", "createdAt")
      VALUES (${topic}, 1, '{}'::jsonb, (clock_timestamp() AT TIME ZONE 'UTC') - interval '1 hour'),
             (${topic}, 2, '{}'::jsonb, (clock_timestamp() AT TIME ZONE 'UTC'))`;
    const pruner = createHistoryPruner({ prisma, windowSeconds: 1, intervalMs: 3_600_000, onError: () => undefined });
    try {
      expect(await pruner.pruneNow()).toBeGreaterThanOrEqual(1);
      expect((await prisma.eventLog.findMany({ where: { topic }, select: { seq: true } })).map((r) => r.seq)).toEqual([
        2,
      ]);
    } finally {
      await pruner.close();
    }
  });
});
