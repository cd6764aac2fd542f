/**
 * Messaging across two server processes sharing PostgreSQL and Redis: participants on different
 * instances and transports see the same messages in the same order, typing crosses instances
 * (never echoed, expiring with isTyping false), and a removed participant's subscriptions end on
 * whichever instance they live.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateConversationDocument,
  MeDocument,
  MessageAddedDocument,
  RemoveParticipantDocument,
  SendMessageDocument,
  SetTypingDocument,
  TypingDocument,
  type MessageAddedSubscription,
  type TypingSubscription,
} from '../generated/graphql.js';
import { subscribe, type Feed, type Transport } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { freshDatabase } from '../support/backends.js';
import { startRedis } from '../support/redis.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

const TYPING_TTL_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stopInfra: () => Promise<void>;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  const [database, redis] = await Promise.all([freshDatabase({ migrated: false }), startRedis()]);
  stopInfra = async () => void (await Promise.all([database.drop(), redis.stop()]));
  const databaseUrl = database.url;
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    TYPING_TTL_MS: String(TYPING_TTL_MS),
    RATE_LIMIT_MESSAGES_PER_MINUTE: '100000',
    RATE_LIMIT_TYPING_PER_MINUTE: '100000',
    RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: '100000',
  };
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await stopInfra?.();
});

interface Person {
  id: string;
  token: string;
}

async function person(id: string): Promise<Person> {
  const token = await tokenFor({ sub: id, name: id });
  dataOf(await execute(fetch, a.graphqlUrl, MeDocument, {}, token));
  return { id, token };
}

const send = async (server: ServerProcess, who: Person, conversationId: string, body: string) =>
  dataOf(await execute(fetch, server.graphqlUrl, SendMessageDocument, { input: { conversationId, body } }, who.token))
    .sendMessage;

async function liveMessages(
  transport: Transport,
  server: ServerProcess,
  who: Person,
  conversationId: string,
  warmer: Person,
): Promise<Feed<MessageAddedSubscription>> {
  const feed = subscribe(transport, server.url, MessageAddedDocument, { conversationId }, who.token);
  for (let attempt = 0; attempt < 40; attempt += 1) {
    const warm = await send(a, warmer, conversationId, `warm-up ${who.id} ${attempt}`);
    try {
      await feed.waitFor((r) => r.data?.messageAdded.id === warm.id, 500);
      return feed;
    } catch {
      // not live yet
    }
  }
  throw new Error('messageAdded never became live');
}

async function liveTyping(
  transport: Transport,
  server: ServerProcess,
  who: Person,
  conversationId: string,
  typer: Person,
): Promise<Feed<TypingSubscription>> {
  const feed = subscribe(transport, server.url, TypingDocument, { conversationId }, who.token);
  const setTyping = async (isTyping: boolean) =>
    dataOf(await execute(fetch, a.graphqlUrl, SetTypingDocument, { conversationId, isTyping }, typer.token)).setTyping;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    await setTyping(false);
    if (await setTyping(true)) {
      try {
        await feed.waitFor((r) => r.data?.typing.user.id === typer.id && r.data.typing.isTyping, 1_100);
        await setTyping(false);
        await feed.waitFor((r) => r.data?.typing.user.id === typer.id && !r.data.typing.isTyping);
        return feed;
      } catch {
        // not live yet
      }
    } else {
      await sleep(300);
    }
  }
  throw new Error('typing never became live');
}

describe('messaging on two instances', () => {
  it('delivers the same messages in the same order to graphql-ws on A and SSE on B', async () => {
    const [alice, bob, carol] = await Promise.all([person('e2e-alice'), person('e2e-bob'), person('e2e-carol')]);
    const { createConversation } = dataOf(
      await execute(
        fetch,
        a.graphqlUrl,
        CreateConversationDocument,
        { participantIds: [bob.id, carol.id], title: 'Cluster' },
        alice.token,
      ),
    );
    const id = createConversation.id;
    const onA = await liveMessages('graphql-ws', a, bob, id, alice);
    const onB = await liveMessages('sse', b, carol, id, alice);
    try {
      const people = [alice, bob, carol];
      const sent = await Promise.all(
        Array.from({ length: 30 }, (_, i) => send(i % 2 ? a : b, people[i % 3]!, id, `m${i}`)),
      );
      const last = Math.max(...sent.map((m) => m.seq));
      await Promise.all([onA, onB].map((feed) => feed.waitFor((r) => r.data?.messageAdded.seq === last)));
      const tail = (feed: Feed<MessageAddedSubscription>) =>
        feed.results
          .map((r) => r.data!.messageAdded)
          .filter((m) => m.body.startsWith('m'))
          .map((m) => [m.seq, m.id]);
      const seenOnA = tail(onA);
      expect(seenOnA).toEqual(tail(onB));
      expect(seenOnA).toHaveLength(30);
      expect(seenOnA.map(([seq]) => seq)).toEqual(Array.from({ length: 30 }, (_, i) => last - 29 + i));
      expect(new Set(seenOnA.map(([, messageId]) => messageId))).toEqual(new Set(sent.map((m) => m.id)));
    } finally {
      await Promise.all([onA.close(), onB.close()]);
    }
  });

  it('shows typing from A on B, never echoed, expiring with isTyping false', async () => {
    const [alice, bob] = await Promise.all([person('e2e-typer'), person('e2e-watcher')]);
    const { createConversation } = dataOf(
      await execute(
        fetch,
        a.graphqlUrl,
        CreateConversationDocument,
        { participantIds: [bob.id], title: 'Typing' },
        alice.token,
      ),
    );
    const id = createConversation.id;
    const bobOnB = await liveTyping('sse', b, bob, id, alice);
    const aliceOnA = await liveTyping('graphql-ws', a, alice, id, bob);
    try {
      await sleep(1_100); // past the per-second start limit of the warm-ups
      const before = bobOnB.results.length;
      expect(
        dataOf(
          await execute(fetch, a.graphqlUrl, SetTypingDocument, { conversationId: id, isTyping: true }, alice.token),
        ).setTyping,
      ).toBe(true);
      const startedAt = Date.now();
      await bobOnB.waitFor((r) => bobOnB.results.indexOf(r) >= before && r.data?.typing.isTyping === true);
      await bobOnB.waitFor(
        (r) => bobOnB.results.indexOf(r) > before && r.data?.typing.isTyping === false,
        TYPING_TTL_MS + 3_000,
      );
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(TYPING_TTL_MS - 200);
      expect(bobOnB.results.slice(before).map((r) => [r.data!.typing.user.id, r.data!.typing.isTyping])).toEqual([
        [alice.id, true],
        [alice.id, false],
      ]);
      await sleep(300);
      expect(bobOnB.results.slice(before)).toHaveLength(2); // the expiry is published once, not once per instance
      // Alice's own typing never reaches her, on either instance's publish path.
      expect(aliceOnA.results.length).toBeGreaterThan(0);
      expect(aliceOnA.results.filter((r) => r.data?.typing.user.id !== bob.id)).toEqual([]);
    } finally {
      await Promise.all([bobOnB.close(), aliceOnA.close()]);
    }
  });

  it("ends a removed participant's subscriptions on both instances with FORBIDDEN", async () => {
    const [alice, bob, carol] = await Promise.all([person('e2e-owner'), person('e2e-stays'), person('e2e-removed')]);
    const { createConversation } = dataOf(
      await execute(
        fetch,
        a.graphqlUrl,
        CreateConversationDocument,
        { participantIds: [bob.id, carol.id], title: 'Removal' },
        alice.token,
      ),
    );
    const id = createConversation.id;
    const carolOnB = await liveMessages('graphql-ws', b, carol, id, alice);
    const carolTypingOnA = await liveTyping('sse', a, carol, id, bob);
    const bobOnB = await liveMessages('sse', b, bob, id, alice);
    try {
      dataOf(
        await execute(
          fetch,
          a.graphqlUrl,
          RemoveParticipantDocument,
          { conversationId: id, userId: carol.id },
          alice.token,
        ),
      );
      await Promise.all([carolOnB.ended, carolTypingOnA.ended]);
      for (const feed of [carolOnB, carolTypingOnA] as Feed<unknown>[]) {
        expect(feed.results.at(-1)?.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
      }
      const after = await send(b, alice, id, 'carol is gone');
      await bobOnB.waitFor((r) => r.data?.messageAdded.id === after.id);
      expect(carolOnB.results.some((r) => r.data?.messageAdded.id === after.id)).toBe(false);
    } finally {
      await Promise.all([carolOnB.close(), carolTypingOnA.close(), bobOnB.close()]);
    }
  });
});
