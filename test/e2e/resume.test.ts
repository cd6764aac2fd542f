/**
 * Resume after a reconnect, end to end (issue 11): two server processes on one PostgreSQL and
 * Redis, a producer committing messages, reaction bursts, notifications and offers through the
 * API at a steady rate, and subscribers that lose their instance mid-stream — the network cut
 * (every connection reset), or the instance SIGKILLed — and reconnect to the other instance with
 * their cursor. Each must end with exactly the topic's history: seqs 1..N, no gap, no duplicate,
 * the same events the polling query pages through. Over graphql-ws and Yoga's distinct SSE with
 * afterSeq; over SSE the way EventSource does it (the same URL again, `Last-Event-ID` from the
 * last `id:`), both as a fetch client and as a real Chromium EventSource behind a proxy that
 * moves to the surviving instance. An instance whose events are committed but never published
 * (its PUBLISH fails) serves on, and every subscriber still gets them, from the history. Cursors
 * that cannot be served fail at once with RESYNC_REQUIRED: AHEAD for one ahead of the topic,
 * NOT_KEPT beyond RESUME_WINDOW_SECONDS (on a third instance with a 2 s window: A and B keep the
 * default, so that the browser's own ~3 s reconnection delay stays well inside it).
 *
 * The SIGKILL test is last: the cluster has one instance after it.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ControlSessionDocument,
  CreateCompetitionDocument,
  CreateConversationDocument,
  CreateSessionDocument,
  CreateSubmissionDocument,
  MakeOfferDocument,
  MeDocument,
  OpenCompetitionDocument,
  ResumeMessageEventsDocument,
  ResumeMessagesDocument,
  ResumeNotificationEventsDocument,
  ResumeNotificationsDocument,
  ResumeOfferEventsDocument,
  ResumeOffersDocument,
  ResumeReactionEventsDocument,
  ResumeReactionsDocument,
  SendMessageDocument,
  SendNotificationDocument,
  SendReactionDocument,
} from '../generated/graphql.js';
import {
  eventSource,
  resumingSubscriber,
  subscribe,
  type Feed,
  type ResumingSubscriber,
  type Transport,
} from '../support/clients.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { until } from '../support/until.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const REACTION_WINDOW_MS = 100;
/** One event per stream per tick. */
const TICK_MS = 80;
const MAX_TICKS = 400;
const TRANSPORTS: Transport[] = ['graphql-ws', 'sse'];

type AnyDoc = TypedDocumentNode<Record<string, unknown>, Record<string, unknown>>;
type Item = { seq: number } & Record<string, unknown>;
interface EventPage {
  events: Item[];
  cursor: number;
  latestSeq: number;
  hasMore: boolean;
}

let cluster: Cluster;
let a: ServerProcess;
let b: ServerProcess;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  [cluster, browser] = await Promise.all([
    startCluster({ REACTION_WINDOW_MS: String(REACTION_WINDOW_MS) }),
    chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    }),
  ]);
  ({ a, b } = cluster);
});
afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

const gql = <R, V>(server: ServerProcess, doc: TypedDocumentNode<R, V>, variables: V, token?: string) =>
  execute(fetch, server.graphqlUrl, doc, variables, token);

/** Rejects with `what` unless `promise` settles within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Fresh topics for one test: a LIVE session (reactions, offers), a conversation, a notified user. */
interface Stage {
  admin: string;
  sessionId: string;
  submissionId: string;
  conversationId: string;
  readerId: string;
  /** Participant of the conversation and recipient of the notifications: the subscriber. */
  reader: string;
  writer: string;
}

async function stage(server: ServerProcess): Promise<Stage> {
  const id = randomUUID().slice(0, 8);
  const [admin, founder, reader, writer] = await Promise.all([
    tokenFor({ sub: 'resume-admin', name: 'Ada', role: 'ADMIN' }),
    tokenFor({ sub: `resume-founder-${id}`, role: 'FOUNDER' }),
    tokenFor({ sub: `resume-reader-${id}` }),
    tokenFor({ sub: `resume-writer-${id}` }),
  ]);
  // Users exist once they made a request.
  for (const token of [founder, reader, writer]) dataOf(await gql(server, MeDocument, {}, token));
  const { createCompetition } = dataOf(
    await gql(server, CreateCompetitionDocument, { input: { title: `Resume ${id}`, votingMethod: 'SIMPLE' } }, admin),
  );
  const competitionId = createCompetition.id;
  const { createSubmission } = dataOf(
    await gql(
      server,
      CreateSubmissionDocument,
      { input: { competitionId, title: 'Pitch', founderId: `resume-founder-${id}` } },
      admin,
    ),
  );
  dataOf(await gql(server, OpenCompetitionDocument, { id: competitionId }, admin));
  const { createSession } = dataOf(
    await gql(
      server,
      CreateSessionDocument,
      { input: { competitionId, submissionIds: [createSubmission.id], presentationSeconds: 600 } },
      admin,
    ),
  );
  dataOf(await gql(server, ControlSessionDocument, { input: { sessionId: createSession.id, action: 'START' } }, admin));
  const { createConversation } = dataOf(
    await gql(server, CreateConversationDocument, { participantIds: [`resume-reader-${id}`] }, writer),
  );
  return {
    admin,
    sessionId: createSession.id,
    submissionId: createSubmission.id,
    conversationId: createConversation.id,
    readerId: `resume-reader-${id}`,
    reader,
    writer,
  };
}

/** One resumable stream: its subscription, polling query, topic variables, and how to commit its next event. */
interface StreamCase {
  field: string;
  subscription: AnyDoc;
  poll: AnyDoc;
  pollField: string;
  vars(s: Stage): Record<string, unknown>;
  produce(server: ServerProcess, s: Stage, i: number): Promise<unknown>;
}

const STREAMS: StreamCase[] = [
  {
    field: 'messageAdded',
    subscription: ResumeMessagesDocument as unknown as AnyDoc,
    poll: ResumeMessageEventsDocument as unknown as AnyDoc,
    pollField: 'messageEvents',
    vars: (s) => ({ conversationId: s.conversationId }),
    produce: async (server, s, i) =>
      dataOf(
        await gql(
          server,
          SendMessageDocument,
          { input: { conversationId: s.conversationId, body: `m${i}` } },
          s.writer,
        ),
      ),
  },
  {
    // A burst per REACTION_WINDOW_MS window that had reactions, committed when the window closes.
    field: 'reactions',
    subscription: ResumeReactionsDocument as unknown as AnyDoc,
    poll: ResumeReactionEventsDocument as unknown as AnyDoc,
    pollField: 'reactionEvents',
    vars: (s) => ({ sessionId: s.sessionId }),
    produce: async (server, s) =>
      dataOf(
        await gql(
          server,
          SendReactionDocument,
          { input: { sessionId: s.sessionId, type: 'CLAP', intensity: 1 } },
          s.writer,
        ),
      ),
  },
  {
    field: 'notificationAdded',
    subscription: ResumeNotificationsDocument,
    poll: ResumeNotificationEventsDocument,
    pollField: 'notificationEvents',
    vars: () => ({}),
    produce: async (server, s, i) =>
      dataOf(
        await gql(
          server,
          SendNotificationDocument,
          { input: { userId: s.readerId, type: 'resume', title: `n${i}` } },
          s.admin,
        ),
      ),
  },
  {
    // One open offer per judge and submission: a new judge each time, one MADE event each.
    field: 'offerUpdated',
    subscription: ResumeOffersDocument as unknown as AnyDoc,
    poll: ResumeOfferEventsDocument as unknown as AnyDoc,
    pollField: 'offerEvents',
    vars: (s) => ({ sessionId: s.sessionId }),
    produce: async (server, s, i) => {
      const judge = await tokenFor({ sub: `resume-judge-${s.sessionId.slice(0, 8)}-${i}`, role: 'JUDGE' });
      return dataOf(
        await gql(
          server,
          MakeOfferDocument,
          { input: { sessionId: s.sessionId, submissionId: s.submissionId, type: 'LOAN', amount: 1000 + i } },
          judge,
        ),
      );
    },
  },
];
const stream = (field: string): StreamCase => STREAMS.find((c) => c.field === field)!;

interface Producer {
  readonly ticks: number;
  /** Acknowledged calls per stream field. */
  readonly acknowledged: Record<string, number>;
  /** Calls that failed on an instance that was up: each one fails the test. */
  readonly failures: string[];
  /** Calls that failed because their instance was killed (maybe committed, maybe not). */
  readonly lost: number;
  /** Resolves once `n` more ticks are done. */
  ticksLater(n: number): Promise<void>;
  /** Ends the loop; then, with `lastVia`, commits one more event per stream through that instance. */
  stop(lastVia?: ServerProcess): Promise<void>;
}

/**
 * Commits one event per stream every TICK_MS, each through `target(field, tick)`, until stopped.
 * `isDown(server)`: failures there are expected (an instance being killed), not test failures.
 */
function startProducer(
  s: Stage,
  target: (field: string, tick: number) => ServerProcess,
  isDown: (server: ServerProcess) => boolean = () => false,
): Producer {
  const acknowledged = Object.fromEntries(STREAMS.map((c) => [c.field, 0]));
  const failures: string[] = [];
  const waiters: { at: number; resolve: () => void }[] = [];
  let ticks = 0;
  let lost = 0;
  let stopped = false;
  const tick = (via: (field: string) => ServerProcess): Promise<unknown> => {
    const i = ticks;
    return Promise.all(
      STREAMS.map(async (c) => {
        const server = via(c.field);
        try {
          await c.produce(server, s, i);
          acknowledged[c.field]! += 1;
        } catch (error) {
          if (isDown(server)) lost += 1;
          else
            failures.push(
              `${c.field} #${i} on ${server.url}: ${error instanceof Error ? error.message : String(error)}`,
            );
        }
      }),
    );
  };
  const loop = (async () => {
    while (!stopped && ticks < MAX_TICKS) {
      const started = Date.now();
      await tick((field) => target(field, ticks));
      ticks += 1;
      for (const waiter of waiters.filter((w) => ticks >= w.at)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, TICK_MS - (Date.now() - started))));
    }
  })();
  return {
    get ticks() {
      return ticks;
    },
    acknowledged,
    failures,
    get lost() {
      return lost;
    },
    ticksLater: (n) =>
      within(
        (n + 5) * TICK_MS * 10,
        `${n} more producer ticks`,
        new Promise<void>((resolve) => waiters.push({ at: ticks + n, resolve })),
      ),
    async stop(lastVia) {
      stopped = true;
      await loop;
      if (lastVia) {
        await tick(() => lastVia);
        ticks += 1;
      }
    },
  };
}

async function pollPage(server: ServerProcess, c: StreamCase, s: Stage, args: { afterSeq?: number; first?: number }) {
  return gql(server, c.poll, { ...c.vars(s), ...args }, s.reader);
}

/** The topic's whole history, paged through the polling query: what every subscriber must end with. */
async function history(server: ServerProcess, c: StreamCase, s: Stage): Promise<Item[]> {
  const events: Item[] = [];
  let afterSeq = 0;
  for (let pages = 0; pages < 50; pages += 1) {
    const page = dataOf(await pollPage(server, c, s, { afterSeq, first: 100 }))[c.pollField] as EventPage;
    events.push(...page.events);
    afterSeq = page.cursor;
    if (!page.hasMore) return events;
  }
  throw new Error(`${c.field}: more than 50 pages`);
}

/**
 * Stops the producer (see Producer.stop for `lastVia`) and reads what every subscriber must have received: each stream's history
 * once every acknowledged reaction is in a committed burst (the last windows close after the stop).
 */
async function finalHistories(
  server: ServerProcess,
  s: Stage,
  producer: Producer,
  lastVia?: ServerProcess,
): Promise<Map<string, Item[]>> {
  await producer.stop(lastVia);
  expect(producer.failures).toEqual([]);
  const reactions = stream('reactions');
  await until(10_000, 'every acknowledged reaction in a burst', async () => {
    const total = (await history(server, reactions, s)).reduce((sum, burst) => sum + (burst['total'] as number), 0);
    return total === producer.acknowledged['reactions'] ? true : undefined;
  });
  const histories = new Map<string, Item[]>();
  for (const c of STREAMS) {
    const events = await history(server, c, s);
    // The history itself is gap-free from 1, and holds at least every acknowledged event.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    if (c.field !== 'reactions') expect(events.length).toBeGreaterThanOrEqual(producer.acknowledged[c.field]!);
    histories.set(c.field, events);
  }
  return histories;
}

/**
 * A subscriber's whole sequence equals the history: seqs 1..N once each, in order, the same
 * events. Soft: a failure reports every subscriber that broke, not only the first.
 */
function expectExact(label: string, received: Item[], expected: Item[]): void {
  expect.soft({ label, seqs: received.map((e) => e.seq) }).toEqual({ label, seqs: expected.map((e) => e.seq) });
  expect.soft({ label, received }).toEqual({ label, received: expected });
}

interface Subscriber {
  label: string;
  c: StreamCase;
  sub: ResumingSubscriber<Item>;
}

function subscribers(s: Stage, baseUrl: string): Subscriber[] {
  return TRANSPORTS.flatMap((transport) =>
    STREAMS.map((c) => {
      const sub = resumingSubscriber<Item>(transport, c.subscription, c.field, c.vars(s), { token: s.reader });
      sub.connect(baseUrl);
      return { label: `${c.field} over ${transport}`, c, sub };
    }),
  );
}

const closeAll = (feeds: { close(): Promise<void> }[]) => Promise.all(feeds.map((feed) => feed.close()));

/** The first result of a subscription that must fail at once: its error's extensions. */
async function firstError(feed: Feed<unknown>): Promise<Record<string, unknown> | undefined> {
  try {
    const first = await feed.waitFor(() => true, 15_000);
    return first.errors?.[0]?.extensions;
  } finally {
    await feed.close();
  }
}

describe('resume across a lost connection and a lost instance', () => {
  it('refuses a cursor ahead of the topic at once: RESYNC_REQUIRED (AHEAD) on both transports, Last-Event-ID and the polling query', async () => {
    const s = await stage(b);
    const producer = startProducer(s, () => b);
    await producer.ticksLater(2);
    const histories = await finalHistories(b, s, producer);
    for (const c of STREAMS) {
      const latestSeq = histories.get(c.field)!.length;
      const ahead = latestSeq + 5;
      const expected = { code: 'RESYNC_REQUIRED', reason: 'AHEAD', latestSeq, retryable: false };
      for (const transport of TRANSPORTS) {
        const extensions = await firstError(
          subscribe(transport, a.url, c.subscription, { ...c.vars(s), afterSeq: ahead }, s.reader),
        );
        expect({ stream: c.field, transport, extensions }).toMatchObject({
          stream: c.field,
          transport,
          extensions: expected,
        });
      }
      const viaHeader = await firstError(
        eventSource(a.url, c.subscription, c.vars(s), { token: s.reader, lastEventId: String(ahead) }),
      );
      expect({ stream: c.field, viaHeader }).toMatchObject({ stream: c.field, viaHeader: expected });
      const polled = await pollPage(b, c, s, { afterSeq: ahead });
      expect({ stream: c.field, polled: polled.errors?.[0]?.extensions }).toMatchObject({
        stream: c.field,
        polled: expected,
      });
    }
  });

  it('refuses a cursor beyond RESUME_WINDOW_SECONDS at once: RESYNC_REQUIRED (NOT_KEPT) for the event log, while messages resume', async () => {
    const s = await stage(b);
    const producer = startProducer(s, () => b);
    await producer.ticksLater(3);
    const histories = await finalHistories(b, s, producer);
    // An instance of the same cluster that keeps resumable events 2 s (its pruner runs too).
    const short = await startServerProcess({ ...cluster.env, RESUME_WINDOW_SECONDS: '2' });
    try {
      const windowed = [stream('reactions'), stream('offerUpdated')];
      for (const c of windowed) {
        const latestSeq = histories.get(c.field)!.length;
        expect(latestSeq).toBeGreaterThanOrEqual(2);
        const expected = { code: 'RESYNC_REQUIRED', reason: 'NOT_KEPT', latestSeq, retryable: false };
        await until(10_000, `${c.field} older than the window`, async () =>
          (await pollPage(short, c, s, { afterSeq: 1 })).errors?.[0]?.extensions?.['reason'] === 'NOT_KEPT'
            ? true
            : undefined,
        );
        for (const transport of TRANSPORTS) {
          const extensions = await firstError(
            subscribe(transport, short.url, c.subscription, { ...c.vars(s), afterSeq: 1 }, s.reader),
          );
          expect({ stream: c.field, transport, extensions }).toMatchObject({
            stream: c.field,
            transport,
            extensions: expected,
          });
        }
        const polled = await pollPage(short, c, s, { afterSeq: 1 });
        expect({ stream: c.field, polled: polled.errors?.[0]?.extensions }).toMatchObject({
          stream: c.field,
          polled: expected,
        });
        // The latest seq is still a valid cursor: nothing after it was missed.
        expect(dataOf(await pollPage(short, c, s, { afterSeq: latestSeq }))[c.pollField]).toMatchObject({
          events: [],
          cursor: latestSeq,
          hasMore: false,
        });
      }
      // Messages are their own history, kept as long as the rows: the same old cursor resumes.
      const messages = stream('messageAdded');
      const expected = histories.get('messageAdded')!.slice(1);
      for (const transport of TRANSPORTS) {
        const feed = subscribe(
          transport,
          short.url,
          messages.subscription,
          { ...messages.vars(s), afterSeq: 1 },
          s.reader,
        );
        try {
          await feed.waitFor((r) => (r.data?.['messageAdded'] as Item | undefined)?.seq === expected.at(-1)!.seq);
          expectExact(
            `messageAdded over ${transport}`,
            feed.results.map((r) => r.data!['messageAdded'] as Item),
            expected,
          );
        } finally {
          await feed.close();
        }
      }
    } finally {
      await short.stop();
    }
  });

  it.todo(
    'graphql-sse single-connection mode: cut and SIGKILL, resumed with afterSeq and with the id: of each next event (with the graphql-sse rewrite)',
  );

  it('cut: every connection to A reset mid-stream; reconnected to B with afterSeq, each subscriber has exactly 1..N', async () => {
    const s = await stage(b);
    const proxy = await startTcpProxy(Number(new URL(a.url).port));
    const subs = subscribers(s, proxy.url);
    const producer = startProducer(s, () => b);
    try {
      await within(20_000, 'every subscriber live on A', Promise.all(subs.map(({ sub }) => sub.waitForSeq(3, 20_000))));
      proxy.cut();
      await within(10_000, 'every client noticed the cut', Promise.all(subs.map(({ sub }) => sub.feed.ended)));
      const cutAt = new Map(subs.map(({ label, sub }) => [label, sub.lastSeq()]));
      // Events keep coming while the clients are away.
      await producer.ticksLater(4);
      const committedWhileAway = { ...producer.acknowledged };
      for (const { sub } of subs) sub.connect(b.url);
      await producer.ticksLater(4);
      const histories = await finalHistories(b, s, producer);
      for (const { label, c, sub } of subs) {
        const expected = histories.get(c.field)!;
        await within(15_000, `${label} up to seq ${expected.length}`, sub.waitForSeq(expected.length, 15_000));
        expectExact(label, sub.items(), expected);
        expect({ label, errors: sub.serverErrors(), connections: sub.connections }).toEqual({
          label,
          errors: [],
          connections: 2,
        });
        // The cut really lost events that the reconnection then replayed.
        if (c.field !== 'reactions')
          expect({ label, missed: committedWhileAway[c.field]! > cutAt.get(label)! }).toEqual({ label, missed: true });
      }
    } finally {
      await producer.stop();
      await closeAll(subs.map(({ sub }) => sub));
      await proxy.close();
    }
  });

  it('a publish that fails: the instance lives on, and subscribers on both instances get its committed events from the history', async () => {
    // An instance whose Redis user may not PUBLISH: it commits each event (with its history) and
    // its publish fails, as when Redis is gone past the client's retries. Nobody hears of those
    // events on the bus; the next event published reveals the gap, which the history fills.
    const admin = new Redis(cluster.redisUrl);
    await admin.call('ACL', 'SETUSER', 'resume-nopublish', 'on', '>resume-secret', '~*', '&*', '+@all', '-publish');
    await admin.quit();
    const port = new URL(cluster.redisUrl).port;
    const p = await startServerProcess({
      ...cluster.env,
      REDIS_URL: `redis://resume-nopublish:resume-secret@127.0.0.1:${port}`,
    });
    const s = await stage(b);
    const subs = [...subscribers(s, b.url), ...subscribers(s, p.url)].map((x, i) => ({
      ...x,
      label: `${x.label} on ${i < 8 ? 'B' : 'P'}`,
    }));
    const producer = startProducer(s, (_field, tick) => (tick % 2 === 0 ? p : b));
    try {
      await producer.ticksLater(12);
      // The last events go through B, so that a gap at the end is revealed too.
      const histories = await finalHistories(b, s, producer, b);
      for (const { label, c, sub } of subs) {
        const expected = histories.get(c.field)!;
        await within(15_000, `${label} up to seq ${expected.length}`, sub.waitForSeq(expected.length, 15_000));
        expectExact(label, sub.items(), expected);
        expect({ label, errors: sub.serverErrors(), connections: sub.connections }).toEqual({
          label,
          errors: [],
          connections: 1,
        });
      }
      expect((await fetch(`${p.url}/health`)).status).toBe(200);
    } finally {
      await producer.stop();
      await closeAll(subs.map(({ sub }) => sub));
      await p.stop();
    }
  });

  it('SIGKILL: A killed mid-stream; afterSeq subscribers, an EventSource-like client and a real browser EventSource end with exactly 1..N on B', async () => {
    const s = await stage(b);
    const proxy = await startTcpProxy(Number(new URL(a.url).port));
    const page = await browser.newPage();
    let killed = false;
    const subs = subscribers(s, a.url);
    // On B all along: sees what A committed and published, or committed and died before publishing.
    const onB = [stream('messageAdded'), stream('notificationAdded')].map((c) => {
      const sub = resumingSubscriber<Item>('graphql-ws', c.subscription, c.field, c.vars(s), { token: s.reader });
      sub.connect(b.url);
      return { label: `${c.field} over graphql-ws on B`, c, sub };
    });
    // EventSource-style: no afterSeq in the URL, ever; the reconnect resumes from Last-Event-ID.
    const sources = [stream('reactions'), stream('messageAdded')].map((c) => ({
      label: `${c.field} over EventSource-like fetch`,
      c,
      feed: eventSource(proxy.url, c.subscription, c.vars(s), { token: s.reader }),
    }));
    let producer: Producer | undefined;
    try {
      await browserEventSource(page, proxy.url, stream('reactions').subscription, stream('reactions').vars(s));
      // They start live from now: produce only once they are (their first event must be seq 1).
      await within(15_000, 'EventSource-like clients open', Promise.all(sources.map((x) => x.feed.opened)));
      // Messages and notifications are committed on both instances until the kill.
      producer = startProducer(
        s,
        (field, tick) => (!killed && ['messageAdded', 'notificationAdded'].includes(field) && tick % 2 === 0 ? a : b),
        (server) => server === a && killed,
      );
      await within(20_000, 'every subscriber live on A', Promise.all(subs.map(({ sub }) => sub.waitForSeq(3, 20_000))));
      await until(20_000, 'the browser got a burst', async () =>
        (await browserState(page)).events.length > 0 ? true : undefined,
      );

      killed = true;
      const { signal } = await a.stop('SIGKILL');
      expect(signal).toBe('SIGKILL');
      proxy.target = Number(new URL(b.url).port);
      await within(10_000, 'every client noticed the kill', Promise.all(subs.map(({ sub }) => sub.feed.ended)));
      await producer.ticksLater(3);
      for (const { sub } of subs) sub.connect(b.url);
      // Chromium's EventSource waits its own reconnection delay (about 3 s) before it comes back.
      await until(
        20_000,
        'the browser reconnected',
        async () => ((await browserState(page)).opens >= 2 ? true : undefined),
        100,
      );
      await producer.ticksLater(4);
      const histories = await finalHistories(b, s, producer);

      for (const { label, c, sub } of [...subs, ...onB]) {
        const expected = histories.get(c.field)!;
        await within(15_000, `${label} up to seq ${expected.length}`, sub.waitForSeq(expected.length, 15_000));
        expectExact(label, sub.items(), expected);
        expect({ label, errors: sub.serverErrors() }).toEqual({ label, errors: [] });
      }
      for (const { label, c, feed } of sources) {
        const expected = histories.get(c.field)!;
        await feed.waitFor((r) => (r.data?.[c.field] as Item | undefined)?.seq === expected.length, 15_000);
        const received = feed.results.map((r) => r.data?.[c.field] as Item);
        expectExact(label, received, expected);
        // Every event carried its seq as id:, and the reconnection sent the last one back.
        expect({ label, ids: feed.ids }).toEqual({ label, ids: received.map((e) => String(e.seq)) });
        expect(feed.requests.length).toBeGreaterThanOrEqual(2);
        expect(feed.requests.at(-1)!.lastEventId).toBeDefined();
      }
      const reactions = histories.get('reactions')!;
      const shown = await until(15_000, 'the browser got every burst', async () => {
        const state = await browserState(page);
        return state.events.at(-1)?.seq === reactions.length ? state : undefined;
      });
      expectExact(
        'reactions in Chromium',
        shown.events.map(({ seq, total }) => ({ seq, total })),
        reactions.map(({ seq, total }) => ({ seq, total })),
      );
      expect(shown.ids).toEqual(reactions.map((e) => String(e.seq)));
      console.info(
        `resume e2e (SIGKILL): ${[...histories].map(([field, events]) => `${field} 1..${events.length}`).join(', ')}; ` +
          `${producer.lost} producer calls lost with A; browser reconnected ${shown.opens - 1}×`,
      );
    } finally {
      await producer?.stop();
      await closeAll([...subs, ...onB].map(({ sub }) => sub));
      await closeAll(sources.map(({ feed }) => feed));
      await page.close();
      await proxy.close();
    }
  });
});

interface BrowserState {
  opens: number;
  errors: number;
  ids: string[];
  events: { seq: number; total: number }[];
}

/**
 * A page on the proxy's origin opens a real EventSource on /graphql (GET, the operation in the
 * URL, no afterSeq) and records each `next` event with its lastEventId; Chromium reconnects on its
 * own, with Last-Event-ID. Resolves once the stream is open (the subscription is live).
 */
async function browserEventSource(
  page: Page,
  origin: string,
  document: AnyDoc,
  variables: Record<string, unknown>,
): Promise<void> {
  await page.goto(`${origin}/health`);
  const path = `/graphql?${new URLSearchParams({ query: print(document), variables: JSON.stringify(variables) })}`;
  await page.evaluate((url) => {
    const state = { opens: 0, errors: 0, ids: [] as string[], events: [] as unknown[] };
    (window as unknown as { resume: typeof state }).resume = state;
    const source = new EventSource(url);
    source.onopen = () => (state.opens += 1);
    source.onerror = () => (state.errors += 1);
    source.addEventListener('next', (event) => {
      state.ids.push(event.lastEventId);
      state.events.push((JSON.parse(event.data as string) as { data: { reactions: unknown } }).data.reactions);
    });
  }, path);
  await until(
    15_000,
    'the browser EventSource opened',
    async () => ((await browserState(page)).opens >= 1 ? true : undefined),
    100,
  );
}

const browserState = (page: Page): Promise<BrowserState> =>
  page.evaluate(() => (window as unknown as { resume: BrowserState }).resume);
