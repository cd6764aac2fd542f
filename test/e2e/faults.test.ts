/**
 * Faults with real processes (issue 15): two server instances sharing one real PostgreSQL and one
 * real Redis, clients on graphql-ws and SSE, and then Redis dies mid-event and comes back,
 * PostgreSQL restarts mid-burst, and an instance is SIGKILLed. What each test shows, and the
 * figures it measured, are in RELIABILITY.md; each test logs its figures (`[faults]` lines).
 *
 * Voters behave as the contract asks a client to: every vote carries an idempotencyKey, and a vote
 * that fails with `retryable: true` (or whose connection failed) is sent again with the same key.
 * The tests then check that each voter is counted exactly once and that no refusal was one a
 * retry could not fix.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  CastVoteDocument,
  CreateConversationDocument,
  MeDocument,
  MessageAddedDocument,
  ResumeMessagesDocument,
  PresenceChangedDocument,
  SendMessageDocument,
  SetTypingDocument,
  TallyUpdatedDocument,
  TypingDocument,
  type TallyUpdatedSubscription,
  type TypingSubscription,
} from '../generated/graphql.js';
import { resumingSubscriber, subscribe, type Feed, type ResumingSubscriber } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { createTestDatabase, startPostgres, type PostgresServer } from '../support/postgres.js';
import { isAlive } from '../support/processes.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { until } from '../support/until.js';
import { openCompetition } from './support.js';

// The SIGKILL test acknowledges votes inside A's flush window and kills A before it ends, with a
// typing indicator set just before that must outlive the kill: windows wide enough for that to
// hold while other test files share the machine's cores.
const TALLY_FLUSH_MS = 4_000;
const TTL_MS = 1_500;
const GRACE_MS = 500;
const TYPING_TTL_MS = 8_000;

let postgres: PostgresServer;
let redis: RedisServer;
let databaseUrl: string;
let a: ServerProcess;
let b: ServerProcess;
/** Set when the last test kills A: clients that were on A reconnect to B from then on. */
let aKilled = false;
const aOrB = (): ServerProcess => (aKilled ? b : a);

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  databaseUrl = await createTestDatabase(postgres.url);
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    TALLY_FLUSH_MS: String(TALLY_FLUSH_MS),
    PRESENCE_CONNECTION_TTL_MS: String(TTL_MS),
    PRESENCE_OFFLINE_GRACE_MS: String(GRACE_MS),
    TYPING_TTL_MS: String(TYPING_TTL_MS),
  };
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([postgres?.stop(), redis?.stop()]);
});

const log = (what: string, figures: Record<string, unknown>): void =>
  console.log(`[faults] ${what}: ${JSON.stringify(figures)}`);

const readyStatus = (server: ServerProcess): Promise<number> =>
  fetch(`${server.url}/ready`, { signal: AbortSignal.timeout(5_000) }).then(
    (r) => r.status,
    () => 0,
  );

/** What voters saw: acks, and every failed attempt by its code (TRANSPORT: no HTTP answer). */
interface VoteLedger {
  acked: number;
  /** The longest a voter waited from its first attempt to its acknowledgement. */
  maxAckMs: number;
  attempts: number;
  refusals: Map<string, number>;
  /** Refusals that said retryable: false (the contract says a retry cannot help: must stay 0). */
  final: { code: string; message: string }[];
}

const newLedger = (): VoteLedger => ({ acked: 0, maxAckMs: 0, attempts: 0, refusals: new Map(), final: [] });

/**
 * One voter as the contract's client: the same idempotencyKey on every attempt, retried while the
 * refusal is retryable (or the connection failed), on `pick(attempt)`'s instance. Bounded.
 */
async function voteUntilAcked(
  ledger: VoteLedger,
  pick: (attempt: number) => ServerProcess,
  voter: string,
  competitionId: string,
  submissionId: string,
  deadlineMs = 60_000,
): Promise<void> {
  const token = await tokenFor({ sub: voter });
  const idempotencyKey = randomUUID();
  const started = Date.now();
  const deadline = started + deadlineMs;
  for (let attempt = 0; Date.now() < deadline; attempt += 1) {
    ledger.attempts += 1;
    let code: string;
    try {
      const result = await execute(
        fetch,
        pick(attempt).graphqlUrl,
        CastVoteDocument,
        { input: { competitionId, submissionId, idempotencyKey } },
        token,
      );
      const error = result.errors?.[0];
      if (!error && result.data) {
        ledger.acked += 1;
        ledger.maxAckMs = Math.max(ledger.maxAckMs, Date.now() - started);
        return;
      }
      code = String(error?.extensions?.['code']);
      if (error?.extensions?.['retryable'] !== true) {
        ledger.final.push({ code, message: error?.message ?? '' });
        return;
      }
    } catch {
      code = 'TRANSPORT';
    }
    ledger.refusals.set(code, (ledger.refusals.get(code) ?? 0) + 1);
    // A client's backoff between retries (not a wait for an event: there is none to wait on).
    await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 1_000)));
  }
  throw new Error(`voter ${voter} not acknowledged within ${deadlineMs} ms`);
}

async function ballotsOf(competitionId: string): Promise<{ voters: number; votes: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ voters: number; votes: number }>(
      `SELECT COUNT(DISTINCT "voterId")::int AS voters, COUNT(*)::int AS votes FROM "Vote" WHERE "competitionId" = $1`,
      [competitionId],
    );
    return rows[0]!;
  } finally {
    await client.end();
  }
}

/** The tally topic's seq in PostgreSQL: it moves when a flush commits, whether or not it was published. */
async function tallySeq(competitionId: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ seq: number }>(`SELECT "seq" FROM "TopicSequence" WHERE "topic" = $1`, [
      `tally:${competitionId}`,
    ]);
    return rows[0]!.seq;
  } finally {
    await client.end();
  }
}

type TallyFeed = Feed<TallyUpdatedSubscription>;
const lastTotal = (feed: TallyFeed): number | undefined => feed.results.at(-1)?.data?.tallyUpdated.totalVotes;

/**
 * A tally watcher as a client kit runs it: when its stream ends (the instance or a dependency went
 * away), it subscribes again (tallyUpdated is a snapshot stream: the first result is the current
 * standings) until `done`.
 */
function tallyWatcher(
  transport: 'graphql-ws' | 'sse',
  server: () => ServerProcess,
  competitionId: string,
  /** Holds a reconnection until it resolves (a client that comes back later). */
  reconnectWhen: () => Promise<void> = async () => undefined,
) {
  const feeds: TallyFeed[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (feeds.length > 0) await reconnectWhen();
      if (stopped) break;
      const feed = subscribe(transport, server().url, TallyUpdatedDocument, { competitionId });
      feeds.push(feed);
      await feed.ended;
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 200)); // the kit's reconnect delay
    }
  })();
  return {
    label: transport,
    get feed() {
      return feeds.at(-1)!;
    },
    get subscriptions() {
      return feeds.length;
    },
    /** Resolves once the current stream's latest result has this total. */
    async waitForTotal(total: number, timeoutMs: number): Promise<void> {
      await until(timeoutMs, `${transport} tally at ${total}`, async () =>
        feeds.at(-1) && lastTotal(feeds.at(-1)!) === total ? true : undefined,
      );
    },
    async stop() {
      stopped = true;
      await Promise.all(feeds.map((f) => f.close()));
      await loop;
    },
  };
}

/** A user exists once signed in: the first authenticated request creates it. */
const signIn = async (token: string): Promise<{ id: string }> =>
  dataOf(await execute(fetch, a.graphqlUrl, MeDocument, {}, token)).me!;

/** A conversation with a resuming messageAdded subscriber per transport (one on each instance). */
async function conversationStage() {
  const [alice, bob] = await Promise.all([
    tokenFor({ sub: `fault-alice-${randomUUID()}`, name: 'Alice' }),
    tokenFor({ sub: `fault-bob-${randomUUID()}`, name: 'Bob' }),
  ]);
  const bobId = (await signIn(bob)).id;
  const { createConversation } = dataOf(
    await execute(fetch, a.graphqlUrl, CreateConversationDocument, { participantIds: [bobId], title: 'Faults' }, alice),
  );
  const conversationId = createConversation.id;
  interface Message {
    seq: number;
    body: string;
  }
  const subs: { label: string; server: () => ServerProcess; sub: ResumingSubscriber<Message>; ended: boolean }[] = [
    { label: 'messageAdded over graphql-ws', server: aOrB, transport: 'graphql-ws' as const },
    { label: 'messageAdded over SSE', server: () => b, transport: 'sse' as const },
  ].map(({ label, server, transport }) => ({
    label,
    server,
    sub: resumingSubscriber<Message>(
      transport,
      ResumeMessagesDocument as never,
      'messageAdded',
      { conversationId },
      { token: bob },
    ),
    ended: false,
  }));
  /** Connects (or reconnects) from the subscriber's cursor. */
  const connect = (s: (typeof subs)[number]): void => {
    s.ended = false;
    void s.sub.connect(s.server().url).ended.then(() => (s.ended = true));
  };
  subs.forEach(connect);
  let sent = 0;
  /** Sends one message (retried like a vote: a retryable refusal or no answer is tried again). */
  const send = async (server: ServerProcess): Promise<void> => {
    const body = `m${sent + 1}`;
    for (let attempt = 0; attempt < 60; attempt += 1) {
      const result = await execute(
        fetch,
        server.graphqlUrl,
        SendMessageDocument,
        { input: { conversationId, body } },
        alice,
      ).catch(() => undefined);
      if (result?.data) {
        sent += 1;
        return;
      }
      if (result && result.errors?.[0]?.extensions?.['retryable'] !== true)
        throw new Error(`sendMessage refused: ${JSON.stringify(result.errors)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error('sendMessage never acknowledged');
  };
  /** Every subscriber ends with exactly 1..sent, in order, once; a stream that ended resumes from its cursor. */
  const expectExact = async (timeoutMs: number): Promise<number> => {
    let resumes = 0;
    for (const s of subs) {
      const { label, sub } = s;
      await until(
        timeoutMs,
        `${label} up to seq ${sent}`,
        async () => {
          if (sub.lastSeq() >= sent) return true;
          if (s.ended) {
            resumes += 1;
            connect(s);
          }
          return undefined;
        },
        100,
      );
      expect({ label, seqs: sub.items().map((m) => m.seq) }).toEqual({
        label,
        seqs: Array.from({ length: sent }, (_, i) => i + 1),
      });
    }
    return resumes;
  };
  return {
    send,
    expectExact,
    get sent() {
      return sent;
    },
    close: () => Promise.all(subs.map(({ sub }) => sub.close())),
  };
}

describe('faults on two instances', () => {
  it('Redis dies mid-event and comes back: /ready says so, nothing exits, each voter counted once, streams end exact', async () => {
    const { competitionId, submissionIds } = await openCompetition(a.graphqlUrl, 3);
    const watchers = [tallyWatcher('graphql-ws', aOrB, competitionId), tallyWatcher('sse', () => b, competitionId)];
    const chat = await conversationStage();
    const ledger = newLedger();
    const voters = 60;
    try {
      await Promise.all(watchers.map((w) => w.waitForTotal(0, 15_000)));
      await chat.send(a);
      await chat.expectExact(15_000);

      // A third of the voters before the outage, a third during, a third after.
      const wave = (from: number, to: number, into = ledger) =>
        Promise.all(
          Array.from({ length: to - from }, (_, k) => {
            const i = from + k;
            return voteUntilAcked(
              into,
              (n) => ((i + n) % 2 === 0 ? a : b),
              `redis-voter-${i}`,
              competitionId,
              submissionIds[i % 3]!,
            );
          }),
        );
      const first = wave(0, 20);
      await chat.send(b);

      await redis.stop();
      const downAt = Date.now();
      const [readyA, readyB] = await Promise.all([readyStatus(a), readyStatus(b)]);
      const notReadyMs = Date.now() - downAt;
      const outage = newLedger();
      const during = wave(20, 40, outage);
      const messagesDuring = Promise.all([chat.send(a), chat.send(b)]);
      // The outage lasts until the voters of this wave have had their first answers, at least 3 s.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect([isAlive(a.pid), isAlive(b.pid)]).toEqual([true, true]);
      expect([(await fetch(`${a.url}/health`)).status, (await fetch(`${b.url}/health`)).status]).toEqual([200, 200]);

      redis = await startRedis({ getPort: async () => redis.port, portAttempts: 1 });
      const upAt = Date.now();
      const outageMs = upAt - downAt;
      await until(30_000, 'both instances ready again', async () =>
        (await readyStatus(a)) === 200 && (await readyStatus(b)) === 200 ? true : undefined,
      );
      const readyAgainMs = Date.now() - upAt;
      await Promise.all([first, during, messagesDuring, wave(40, voters), chat.send(a)]);

      expect([readyA, readyB]).toEqual([503, 503]);
      expect([...ledger.final, ...outage.final]).toEqual([]);
      expect(ledger.acked + outage.acked).toBe(voters);
      // Voting does not wait for Redis: the guards answer from local state (fail open).
      expect(outage.maxAckMs).toBeLessThan(outageMs / 2);
      expect(await ballotsOf(competitionId)).toEqual({ voters, votes: voters });
      const started = Date.now();
      await Promise.all(watchers.map((w) => w.waitForTotal(voters, 20_000)));
      const tallyExactMs = Date.now() - started;
      const resumes = await chat.expectExact(20_000);
      log('redis outage', {
        outageMs,
        notReadyAnsweredInMs: notReadyMs,
        readyAgainMs,
        tallyExactAfterMs: tallyExactMs,
        votes: {
          voters,
          acked: ledger.acked + outage.acked,
          attempts: ledger.attempts + outage.attempts,
          refusals: Object.fromEntries([...ledger.refusals, ...outage.refusals]),
          maxAckMsDuringOutage: outage.maxAckMs,
        },
        tallySubscriptions: watchers.map((w) => `${w.label}: ${w.subscriptions}`),
        messages: chat.sent,
        messageResumes: resumes,
      });
    } finally {
      await Promise.all([...watchers.map((w) => w.stop()), chat.close()]);
    }
  }, 120_000);

  it('PostgreSQL restarts mid-burst: acknowledged votes survive, retries count once, both instances serve again', async () => {
    const { competitionId, submissionIds } = await openCompetition(a.graphqlUrl, 3);
    const watchers = [tallyWatcher('graphql-ws', () => b, competitionId), tallyWatcher('sse', aOrB, competitionId)];
    const ledger = newLedger();
    const voters = 60;
    try {
      await Promise.all(watchers.map((w) => w.waitForTotal(0, 15_000)));
      const burst = Promise.all(
        Array.from({ length: voters }, async (_, i) => {
          // Spread over ~3 s so that the restart lands in the middle of the burst.
          await new Promise((resolve) => setTimeout(resolve, i * 50));
          await voteUntilAcked(
            ledger,
            (n) => ((i + n) % 2 === 0 ? a : b),
            `pg-voter-${i}`,
            competitionId,
            submissionIds[i % 3]!,
          );
        }),
      );
      await until(15_000, 'a third of the burst acknowledged', async () =>
        ledger.acked >= voters / 3 ? true : undefined,
      );
      const ackedBefore = ledger.acked;
      let downMs = 0;
      const readyWhileDown: number[] = [];
      await postgres.restart(async () => {
        const downAt = Date.now();
        readyWhileDown.push(await readyStatus(a), await readyStatus(b));
        // Down for a second at least: a restart's real length.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        downMs = Date.now() - downAt;
      });
      const upAt = Date.now();
      await until(30_000, 'both instances ready again', async () =>
        (await readyStatus(a)) === 200 && (await readyStatus(b)) === 200 ? true : undefined,
      );
      const readyAgainMs = Date.now() - upAt;
      await burst;

      expect(readyWhileDown).toEqual([503, 503]);
      expect([isAlive(a.pid), isAlive(b.pid)]).toEqual([true, true]);
      expect(ledger.final).toEqual([]);
      expect(ledger.acked).toBe(voters);
      expect(await ballotsOf(competitionId)).toEqual({ voters, votes: voters });
      await Promise.all(watchers.map((w) => w.waitForTotal(voters, 20_000)));
      log('postgres restart', {
        downMs,
        readyAgainMs,
        votes: {
          voters,
          ackedBeforeRestart: ackedBefore,
          acked: ledger.acked,
          attempts: ledger.attempts,
          refusals: Object.fromEntries(ledger.refusals),
        },
        tallySubscriptions: watchers.map((w) => `${w.label}: ${w.subscriptions}`),
      });
    } finally {
      await Promise.all(watchers.map((w) => w.stop()));
    }
  }, 120_000);

  it('an instance SIGKILLed: its clients resume on the other, its tally flush, typing and presence are taken over', async () => {
    const { competitionId, submissionIds } = await openCompetition(b.graphqlUrl, 2);
    // The watcher on A comes back (on B) only once B's own watcher has the exact total: a new
    // subscriber reads the standings itself, so it must not be what brings them up to date.
    let letBack!: () => void;
    const back = new Promise<void>((resolve) => (letBack = resolve));
    const onA = tallyWatcher('graphql-ws', aOrB, competitionId, () => back);
    const onB = tallyWatcher('sse', () => b, competitionId);
    const chat = await conversationStage(); // graphql-ws on A, SSE on B
    const typer = { id: `fault-typer-${randomUUID()}` };
    const typerToken = await tokenFor({ sub: typer.id, name: 'Typer' });
    await signIn(typerToken);
    const watcherToken = await tokenFor({ sub: `fault-watcher-${randomUUID()}` });
    const { createConversation } = dataOf(
      await execute(fetch, b.graphqlUrl, CreateConversationDocument, { participantIds: [typer.id] }, watcherToken),
    );
    const typing: Feed<TypingSubscription> = subscribe(
      'sse',
      b.url,
      TypingDocument,
      { conversationId: createConversation.id },
      watcherToken,
    );
    const presence = subscribe('sse', b.url, PresenceChangedDocument, { userIds: [typer.id] });
    const typerOnA = subscribe(
      'graphql-ws',
      a.url,
      MessageAddedDocument,
      { conversationId: createConversation.id },
      typerToken,
    );
    try {
      await Promise.all([onA.waitForTotal(0, 15_000), onB.waitForTotal(0, 15_000)]);
      await presence.waitFor((r) => r.data?.presenceChanged.connections === 1, 15_000);
      await chat.send(a);
      await chat.send(b);
      await chat.expectExact(15_000);

      // Typing that A stores (its expiry, TYPING_TTL_MS later, falls after A's death)...
      const set = dataOf(
        await execute(
          fetch,
          a.graphqlUrl,
          SetTypingDocument,
          { conversationId: createConversation.id, isTyping: true },
          typerToken,
        ),
      );
      expect(set.setTyping).toBe(true);
      // ... votes through A only: the first opens A's flush window (its update is seen), the others
      // are acknowledged inside that window, their update left for A's next flush...
      const ledger = newLedger();
      const voters = 10;
      await voteUntilAcked(ledger, () => a, 'kill-voter-0', competitionId, submissionIds[0]!);
      await onB.waitForTotal(1, 10_000);
      await Promise.all(
        Array.from({ length: voters - 1 }, (_, k) =>
          voteUntilAcked(ledger, () => a, `kill-voter-${k + 1}`, competitionId, submissionIds[(k + 1) % 2]!),
        ),
      );
      // ... then A dies before its flush window ends (TALLY_FLUSH_MS is 4 s).
      aKilled = true;
      const { signal } = await a.stop('SIGKILL');
      const killedAt = Date.now();
      const after = (event: Promise<unknown>): Promise<number> => {
        const ms = event.then(() => Date.now() - killedAt);
        ms.catch(() => undefined); // awaited below; not unhandled if the test fails before that
        return ms;
      };
      // Waited for from the kill on, so each figure is when its event arrived, not when the test
      // got to it: typing A stored expires (isTyping false) on B's watcher after A's death, and the
      // typer, connected only to A, goes OFFLINE within TTL + grace, not stuck ONLINE.
      const typingExpired = after(typing.waitFor((r) => r.data?.typing.isTyping === false, 30_000));
      const offline = after(
        presence.waitFor(
          (r) =>
            r.data?.presenceChanged.status === 'OFFLINE' &&
            r.data.presenceChanged.connections === 0 &&
            r.data.presenceChanged.lastSeenAt !== null,
          30_000,
        ),
      );
      expect(signal).toBe('SIGKILL');
      // A died owing the update (no flush since the one B's watcher saw), and the typing it stored
      // had not expired: else this test shows nothing about the takeover.
      expect(await tallySeq(competitionId)).toBe(onB.feed.results.at(-1)?.data?.tallyUpdated.seq);
      expect(lastTotal(onB.feed)).toBeLessThan(voters);
      await typing.waitFor((r) => r.data?.typing.isTyping === true, 10_000);
      expect(typing.results.some((r) => r.data?.typing.isTyping === false)).toBe(false);
      await chat.send(b);
      await chat.send(b);

      // Tally: the acknowledged votes reach every watcher, the one that was on A resubscribed to B.
      const tallyMs = await after(onB.waitForTotal(voters, 20_000));
      letBack();
      await onA.waitForTotal(voters, 20_000);
      expect(await ballotsOf(competitionId)).toEqual({ voters, votes: voters });
      const [typingMs, offlineMs] = await Promise.all([typingExpired, offline]);
      expect(offlineMs).toBeLessThan(TTL_MS + GRACE_MS + 3_000);
      // Messages: the subscriber that was on A resumes on B from its cursor with nothing missed.
      const resumes = await chat.expectExact(20_000);
      expect(resumes).toBeGreaterThanOrEqual(1);
      log('instance SIGKILL', {
        tallyExactAfterMs: tallyMs,
        typingExpiredAfterMs: typingMs,
        offlineAfterMs: offlineMs,
        messages: chat.sent,
        messageResumes: resumes,
        tallyResubscriptions: onA.subscriptions - 1,
      });
    } finally {
      letBack();
      await Promise.all([onA.stop(), onB.stop(), chat.close(), typing.close(), presence.close(), typerOnA.close()]);
    }
  }, 120_000);
});
