/**
 * Messaging over HTTP (and SSE for the streams) on every backend (a Redis Cluster too): conversations, participants-only
 * access on every operation, idempotent resends under concurrency, unread counts, read receipts,
 * pagination, commit-ordered seqs under concurrent senders, typing indicators, and membership
 * changes that end the removed participant's streams. On Redis also: two typing stores on one
 * Redis publish each expiry exactly once.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AddParticipantsDocument,
  ConversationDocument,
  ConversationsDocument,
  CreateConversationDocument,
  LeaveConversationDocument,
  MarkConversationReadDocument,
  MeDocument,
  MessageAddedDocument,
  ReadReceiptUpdatedDocument,
  RemoveParticipantDocument,
  SendMessageDocument,
  SetTypingDocument,
  TypingDocument,
  type MessageAddedSubscription,
  type ReadReceiptUpdatedSubscription,
  type TypingSubscription,
} from '../generated/graphql.js';
import { createRedisTypingStore } from '../../src/modules/messaging/messaging.typing.store.redis.js';
import type { TypingChange } from '../../src/modules/messaging/messaging.typing.store.js';
import { useTestApp } from '../support/app.js';
import { redisFor, withCluster } from '../support/backends.js';
import { subscribe, type Feed } from '../support/clients.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';

const TYPING_TTL_MS = 800;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(withCluster)('messaging on $name', (backend) => {
  const t = useTestApp(backend, {
    TYPING_TTL_MS: String(TYPING_TTL_MS),
    // The rate-limit rules are not what this file tests.
    RATE_LIMIT_MESSAGES_PER_MINUTE: '100000',
    RATE_LIMIT_TYPING_PER_MINUTE: '100000',
    RATE_LIMIT_MUTATIONS_PER_MINUTE: '100000',
    RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: '100000',
  });
  let n = 0;
  const gql = t.gql;
  const fieldOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
    result.errors?.[0]?.extensions?.['field'];
  const reasonOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
    result.errors?.[0]?.extensions?.['reason'];

  /** `count` users who have signed in (a user exists once it has), with their tokens. */
  async function users(
    count: number,
    role: 'AUDIENCE' | 'ADMIN' = 'AUDIENCE',
  ): Promise<{ id: string; token: string }[]> {
    n += 1;
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const id = `msg-${n}-${i}`;
        const token = await tokenFor({ sub: id, name: `User ${n}.${i}`, role });
        dataOf(await gql(MeDocument, {}, token));
        return { id, token };
      }),
    );
  }

  async function group(creator: { token: string }, others: { id: string }[], title = 'Group'): Promise<string> {
    return dataOf(
      await gql(CreateConversationDocument, { participantIds: others.map((o) => o.id), title }, creator.token),
    ).createConversation.id;
  }

  const send = async (token: string, conversationId: string, body: string, clientMessageId?: string) =>
    dataOf(
      await gql(
        SendMessageDocument,
        { input: { conversationId, body, ...(clientMessageId && { clientMessageId }) } },
        token,
      ),
    ).sendMessage;

  /** A messageAdded feed over SSE known to be live: warm-up messages until one arrives. */
  async function liveMessages(
    token: string,
    conversationId: string,
    warmer: string,
  ): Promise<Feed<MessageAddedSubscription>> {
    const feed = subscribe('sse', t.url, MessageAddedDocument, { conversationId }, token);
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const warm = await send(warmer, conversationId, `warm-up ${attempt}`);
      try {
        await feed.waitFor((r) => r.data?.messageAdded.id === warm.id || r.errors !== undefined, 300);
        return feed;
      } catch {
        // not live yet
      }
    }
    throw new Error('messageAdded never became live');
  }

  /** A readReceiptUpdated feed known to be live: `reader` reads fresh messages until its receipt arrives. */
  async function liveReceipts(
    token: string,
    conversationId: string,
    writer: string,
    reader: string,
  ): Promise<Feed<ReadReceiptUpdatedSubscription>> {
    const feed = subscribe('sse', t.url, ReadReceiptUpdatedDocument, { conversationId }, token);
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const warm = await send(writer, conversationId, `receipt warm-up ${attempt}`);
      dataOf(await gql(MarkConversationReadDocument, { conversationId, upToMessageId: warm.id }, reader));
      try {
        await feed.waitFor((r) => r.data?.readReceiptUpdated.lastReadMessageId === warm.id, 300);
        return feed;
      } catch {
        // not live yet
      }
    }
    throw new Error('readReceiptUpdated never became live');
  }

  /** A typing feed known to be live: `typer` starts typing (once a second at most) until it shows. */
  async function liveTyping(token: string, conversationId: string, typer: string): Promise<Feed<TypingSubscription>> {
    const feed = subscribe('sse', t.url, TypingDocument, { conversationId }, token);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      dataOf(await gql(SetTypingDocument, { conversationId, isTyping: false }, typer));
      const started = dataOf(await gql(SetTypingDocument, { conversationId, isTyping: true }, typer)).setTyping;
      try {
        if (started) {
          await feed.waitFor((r) => r.data?.typing.isTyping === true, 1_100);
          dataOf(await gql(SetTypingDocument, { conversationId, isTyping: false }, typer));
          await feed.waitFor((r) => r.data?.typing.isTyping === false);
          return feed;
        }
        await sleep(300);
      } catch {
        // not live yet
      }
    }
    throw new Error('typing never became live');
  }

  it('creates direct conversations once per pair (also when both create at once) and groups', async () => {
    const [alice, bob, carol] = await users(3);
    const direct = dataOf(
      await gql(CreateConversationDocument, { participantIds: [bob!.id] }, alice!.token),
    ).createConversation;
    expect(direct).toMatchObject({ title: null, isDirect: true, lastMessageAt: null });
    expect(direct.participants.map((p) => p.id).sort()).toEqual([alice!.id, bob!.id].sort());
    const again = dataOf(
      await gql(CreateConversationDocument, { participantIds: [alice!.id, alice!.id] }, bob!.token),
    ).createConversation;
    expect(again.id).toBe(direct.id);

    const racing = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        gql(
          CreateConversationDocument,
          { participantIds: [i % 2 ? bob!.id : carol!.id] },
          i % 2 ? carol!.token : bob!.token,
        ),
      ),
    );
    expect(new Set(racing.map((r) => dataOf(r).createConversation.id)).size).toBe(1);
    expect(
      await t.app.database.prisma.conversation.count({
        where: { directKey: { not: null }, participants: { some: { userId: carol!.id } } },
      }),
    ).toBe(1);

    const titled = dataOf(
      await gql(CreateConversationDocument, { participantIds: [bob!.id], title: ' Plans ' }, alice!.token),
    ).createConversation;
    expect(titled).toMatchObject({ title: 'Plans', isDirect: false });
    expect(titled.id).not.toBe(direct.id);
    const trio = dataOf(
      await gql(CreateConversationDocument, { participantIds: [bob!.id, carol!.id] }, alice!.token),
    ).createConversation;
    expect(trio).toMatchObject({ title: null, isDirect: false });
    expect(trio.participants.map((p) => p.id)).toHaveLength(3);
  });

  it('validates participants: existing users only, named by index; at least one other; signed-in callers', async () => {
    const [alice, bob] = await users(2);
    const unknown = await gql(CreateConversationDocument, { participantIds: [bob!.id, 'nobody-ever'] }, alice!.token);
    expect([codesOf(unknown), fieldOf(unknown)]).toEqual([['BAD_USER_INPUT'], 'participantIds[1]']);
    const alone = await gql(CreateConversationDocument, { participantIds: [alice!.id] }, alice!.token);
    expect([codesOf(alone), fieldOf(alone)]).toEqual([['BAD_USER_INPUT'], 'participantIds']);
    const tooMany = await gql(
      CreateConversationDocument,
      { participantIds: Array.from({ length: 100 }, (_, i) => `x${i}`) },
      alice!.token,
    );
    expect([codesOf(tooMany), fieldOf(tooMany)]).toEqual([['BAD_USER_INPUT'], 'participantIds']);
    expect(codesOf(await gql(CreateConversationDocument, { participantIds: [bob!.id] }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(ConversationsDocument, {}))).toEqual(['UNAUTHENTICATED']);
    const id = await group(alice!, [bob!]);
    const blank = await gql(SendMessageDocument, { input: { conversationId: id, body: '   ' } }, alice!.token);
    expect([codesOf(blank), fieldOf(blank)]).toEqual([['BAD_USER_INPUT'], 'input.body']);
    const long = await gql(
      SendMessageDocument,
      { input: { conversationId: id, body: 'x'.repeat(4001) } },
      alice!.token,
    );
    expect([codesOf(long), fieldOf(long)]).toEqual([['BAD_USER_INPUT'], 'input.body']);
    expect((await send(alice!.token, id, `  ${'y'.repeat(4000)}  `)).body).toBe('y'.repeat(4000));
  });

  it('answers FORBIDDEN to non-participants on every operation, and the same for conversations that do not exist', async () => {
    const [alice, bob, eve] = await users(3);
    const id = await group(alice!, [bob!]);
    const message = await send(alice!.token, id, 'secret');
    for (const conversationId of [id, randomUUID()]) {
      const attempts = [
        gql(ConversationDocument, { id: conversationId }, eve!.token),
        gql(SendMessageDocument, { input: { conversationId, body: 'hi' } }, eve!.token),
        gql(SendMessageDocument, { input: { conversationId, body: 'hi', clientMessageId: 'c' } }, eve!.token),
        gql(MarkConversationReadDocument, { conversationId, upToMessageId: message.id }, eve!.token),
        gql(SetTypingDocument, { conversationId, isTyping: true }, eve!.token),
        gql(AddParticipantsDocument, { conversationId, userIds: [eve!.id] }, eve!.token),
        gql(RemoveParticipantDocument, { conversationId, userId: bob!.id }, eve!.token),
        gql(LeaveConversationDocument, { conversationId }, eve!.token),
      ];
      for (const result of await Promise.all(attempts)) expect(codesOf(result)).toEqual(['FORBIDDEN']);
      const firstCode = async <T>(feed: Feed<T>) => {
        try {
          const first = await feed.waitFor(() => true);
          await feed.ended;
          return first.errors?.[0]?.extensions?.['code'];
        } finally {
          await feed.close();
        }
      };
      expect(
        await Promise.all([
          firstCode(subscribe('sse', t.url, MessageAddedDocument, { conversationId }, eve!.token)),
          firstCode(subscribe('graphql-ws', t.url, ReadReceiptUpdatedDocument, { conversationId }, eve!.token)),
          firstCode(subscribe('sse', t.url, TypingDocument, { conversationId }, eve!.token)),
        ]),
      ).toEqual(['FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN']);
    }
    expect(dataOf(await gql(ConversationsDocument, {}, eve!.token)).conversations).toEqual([]);
    // Nothing leaked or changed.
    expect(await t.app.database.prisma.message.count({ where: { conversationId: id } })).toBe(1);
    expect(await t.app.database.prisma.conversationParticipant.count({ where: { conversationId: id } })).toBe(2);
  });

  it('makes 20 concurrent resends of one clientMessageId one message, without burning a seq', async () => {
    const [alice, bob] = await users(2);
    const id = await group(alice!, [bob!]);
    const first = await send(alice!.token, id, 'before');
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        gql(
          SendMessageDocument,
          { input: { conversationId: id, body: ' once ', clientMessageId: 'client-1' } },
          alice!.token,
        ),
      ),
    );
    const ids = new Set(results.map((r) => dataOf(r).sendMessage.id));
    expect(ids.size).toBe(1);
    const once = dataOf(results[0]!).sendMessage;
    expect(once).toMatchObject({ body: 'once', clientMessageId: 'client-1', seq: first.seq + 1 });
    expect(
      await t.app.database.prisma.message.count({ where: { conversationId: id, clientMessageId: 'client-1' } }),
    ).toBe(1);
    // A later resend returns it too; the same id with another body is a client bug.
    expect((await send(alice!.token, id, 'once', 'client-1')).id).toBe(once.id);
    const reused = await gql(
      SendMessageDocument,
      { input: { conversationId: id, body: 'different', clientMessageId: 'client-1' } },
      alice!.token,
    );
    expect([codesOf(reused), reasonOf(reused)]).toEqual([['CONFLICT'], 'CLIENT_MESSAGE_ID_REUSED']);
    // clientMessageIds are per author: bob may use the same one.
    const bobs = await send(bob!.token, id, 'mine', 'client-1');
    expect(bobs.id).not.toBe(once.id);
    expect((await send(alice!.token, id, 'after')).seq).toBe(first.seq + 3);
  });

  it('counts unread messages per viewer and moves read positions only forward, with receipts to the others', async () => {
    const [alice, bob, carol] = await users(3);
    const id = await group(alice!, [bob!, carol!]);
    const receiptsForAlice = await liveReceipts(alice!.token, id, bob!.token, carol!.token);
    const receiptsForCarol = subscribe('sse', t.url, ReadReceiptUpdatedDocument, { conversationId: id }, carol!.token);
    try {
      const base = dataOf(await gql(ConversationDocument, { id }, alice!.token)).conversation!;
      const a = [
        await send(alice!.token, id, 'a1'),
        await send(alice!.token, id, 'a2'),
        await send(alice!.token, id, 'a3'),
      ];
      const b = [await send(bob!.token, id, 'b1'), await send(bob!.token, id, 'b2')];
      const unread = async (token: string) =>
        dataOf(await gql(ConversationDocument, { id }, token)).conversation!.unreadCount;
      expect(await unread(alice!.token)).toBe(2); // writing moved alice's position to a3
      expect(await unread(bob!.token)).toBe(0);
      expect(base.unreadCount).toBeGreaterThan(0); // bob's warm-ups
      expect(await unread(carol!.token)).toBe(5); // carol read the warm-ups

      const read = dataOf(
        await gql(MarkConversationReadDocument, { conversationId: id, upToMessageId: a[2]!.id }, carol!.token),
      ).markConversationRead;
      expect(read).toMatchObject({
        conversationId: id,
        user: { id: carol!.id },
        lastReadMessageId: a[2]!.id,
        lastReadSeq: a[2]!.seq,
      });
      expect(await unread(carol!.token)).toBe(2);
      // Backwards: the position stays at a3, and nothing is published.
      const back = dataOf(
        await gql(MarkConversationReadDocument, { conversationId: id, upToMessageId: a[0]!.id }, carol!.token),
      ).markConversationRead;
      expect(back).toMatchObject({ lastReadMessageId: a[2]!.id, lastReadSeq: a[2]!.seq, readAt: read.readAt });
      dataOf(await gql(MarkConversationReadDocument, { conversationId: id, upToMessageId: b[1]!.id }, alice!.token));
      expect(await unread(alice!.token)).toBe(0);

      await receiptsForAlice.waitFor((r) => r.data?.readReceiptUpdated.lastReadMessageId === a[2]!.id);
      await receiptsForCarol.waitFor((r) => r.data?.readReceiptUpdated.user.id === alice!.id);
      // Alice never gets her own receipt; carol never gets hers; nobody gets the backwards one.
      expect(receiptsForAlice.results.every((r) => r.data?.readReceiptUpdated.user.id === carol!.id)).toBe(true);
      expect(receiptsForAlice.results.filter((r) => r.data?.readReceiptUpdated.lastReadMessageId === a[0]!.id)).toEqual(
        [],
      );
      expect(receiptsForCarol.results.every((r) => r.data?.readReceiptUpdated.user.id !== carol!.id)).toBe(true);
      const seqs = receiptsForAlice.results.map((r) => r.data!.readReceiptUpdated.lastReadSeq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));

      const other = await group(alice!, [bob!]);
      const wrong = await gql(
        MarkConversationReadDocument,
        { conversationId: other, upToMessageId: a[0]!.id },
        alice!.token,
      );
      expect([codesOf(wrong), fieldOf(wrong)]).toEqual([['BAD_USER_INPUT'], 'upToMessageId']);

      const { conversation } = dataOf(await gql(ConversationDocument, { id }, bob!.token));
      expect(conversation!.readReceipts.find((r) => r.user.id === carol!.id)).toMatchObject({
        lastReadMessageId: a[2]!.id,
      });
      // Newest activity first.
      await send(bob!.token, other, 'newer');
      const list = dataOf(await gql(ConversationsDocument, {}, bob!.token)).conversations;
      expect(list.map((c) => c.id)).toEqual([other, id]);
      expect(list.map((c) => c.unreadCount)).toEqual([0, 0]);
    } finally {
      await Promise.all([receiptsForAlice.close(), receiptsForCarol.close()]);
    }
  });

  it('paginates history backwards with last and before, newest last', async () => {
    const [alice, bob] = await users(2);
    const id = await group(alice!, [bob!]);
    const sent = [];
    for (let i = 1; i <= 7; i += 1) sent.push(await send(i % 2 ? alice!.token : bob!.token, id, `m${i}`));
    const page = async (last: number | undefined, before?: string) =>
      dataOf(await gql(ConversationDocument, { id, last, before }, bob!.token)).conversation!.messages.map(
        (m) => m.body,
      );
    expect(await page(undefined)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    expect(await page(3)).toEqual(['m5', 'm6', 'm7']);
    expect(await page(3, sent[4]!.id)).toEqual(['m2', 'm3', 'm4']);
    expect(await page(3, sent[1]!.id)).toEqual(['m1']);
    expect(await page(3, sent[0]!.id)).toEqual([]);
    for (const last of [0, 101]) {
      const bad = await gql(ConversationDocument, { id, last }, bob!.token);
      expect([codesOf(bad), fieldOf(bad)]).toEqual([['BAD_USER_INPUT'], 'last']);
    }
    const other = await group(alice!, [bob!]);
    const elsewhere = await send(alice!.token, other, 'elsewhere');
    const bad = await gql(ConversationDocument, { id, before: elsewhere.id }, bob!.token);
    expect([codesOf(bad), fieldOf(bad)]).toEqual([['BAD_USER_INPUT'], 'before']);
  });

  it('gives 50 concurrent messages from 5 users seqs 1..50 in commit order; subscribers get every one in order', async () => {
    const people = await users(5);
    const id = await group(people[0]!, people.slice(1));
    const sent = await Promise.all(Array.from({ length: 50 }, (_, i) => send(people[i % 5]!.token, id, `burst ${i}`)));
    expect(sent.map((m) => m.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const history = dataOf(await gql(ConversationDocument, { id, last: 100 }, people[1]!.token)).conversation!.messages;
    expect(history.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // Commit order: createdAt never decreases along seq.
    const times = history.map((m) => Date.parse(m.createdAt));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(history.map((m) => m.id))).toEqual(new Set(sent.map((m) => m.id)));

    const feed = await liveMessages(people[4]!.token, id, people[0]!.token);
    try {
      const from = (feed.results.at(-1)!.data!.messageAdded.seq ?? 0) + 1;
      const more = await Promise.all(Array.from({ length: 20 }, (_, i) => send(people[i % 5]!.token, id, `more ${i}`)));
      await feed.waitFor((r) => r.data?.messageAdded.seq === from + 19);
      const delivered = feed.results.map((r) => r.data!.messageAdded.seq).filter((seq) => seq >= from);
      expect(delivered).toEqual(Array.from({ length: 20 }, (_, i) => from + i));
      expect(new Set(more.map((m) => m.seq))).toEqual(new Set(delivered));
    } finally {
      await feed.close();
    }
  });

  it('shows typing to the others only, expires it with isTyping false, clears it on send, and throttles starts', async () => {
    const [alice, bob] = await users(2);
    const id = await group(alice!, [bob!]);
    const bobSees = await liveTyping(bob!.token, id, alice!.token);
    const aliceSees = await liveTyping(alice!.token, id, bob!.token);
    try {
      await sleep(1_000); // past the start rate limit of the warm-ups
      const count = (feed: Feed<TypingSubscription>) => feed.results.length;
      const before = count(bobSees);
      const started = Date.now();
      expect(dataOf(await gql(SetTypingDocument, { conversationId: id, isTyping: true }, alice!.token)).setTyping).toBe(
        true,
      );
      await bobSees.waitFor((r) => bobSees.results.indexOf(r) >= before && r.data?.typing.isTyping === true);
      // A refresh publishes nothing; without further refreshes the state ends by itself.
      expect(dataOf(await gql(SetTypingDocument, { conversationId: id, isTyping: true }, alice!.token)).setTyping).toBe(
        true,
      );
      const refreshedAt = Date.now();
      await bobSees.waitFor((r) => bobSees.results.indexOf(r) > before && r.data?.typing.isTyping === false, 5_000);
      const expiredAfter = Date.now() - refreshedAt;
      expect(expiredAfter).toBeGreaterThanOrEqual(TYPING_TTL_MS - 100);
      expect(Date.now() - started).toBeLessThan(TYPING_TTL_MS + 2_000);
      const fresh = bobSees.results.slice(before).map((r) => [r.data!.typing.user.id, r.data!.typing.isTyping]);
      expect(fresh).toEqual([
        [alice!.id, true],
        [alice!.id, false],
      ]);
      expect(bobSees.results.every((r) => r.data?.typing.user.id === alice!.id)).toBe(true);
      expect(aliceSees.results.every((r) => r.data?.typing.user.id === bob!.id)).toBe(true);
      expect(bobSees.results[before]!.data!.typing).toMatchObject({
        conversationId: id,
        user: { id: alice!.id, name: expect.any(String) },
      });

      // Sending clears the sender's typing.
      await sleep(1_000);
      const beforeSend = count(bobSees);
      expect(dataOf(await gql(SetTypingDocument, { conversationId: id, isTyping: true }, alice!.token)).setTyping).toBe(
        true,
      );
      await send(alice!.token, id, 'done typing');
      await bobSees.waitFor((r) => bobSees.results.indexOf(r) > beforeSend && r.data?.typing.isTyping === false, 500);
      // A new start within a second of the last one is dropped.
      expect(dataOf(await gql(SetTypingDocument, { conversationId: id, isTyping: true }, alice!.token)).setTyping).toBe(
        false,
      );
      await sleep(TYPING_TTL_MS + 400);
      expect(bobSees.results.slice(beforeSend).map((r) => r.data!.typing.isTyping)).toEqual([true, false]);
      // Typing is never stored.
      expect(await t.app.database.prisma.message.count({ where: { conversationId: id } })).toBe(1);
    } finally {
      await Promise.all([bobSees.close(), aliceSees.close()]);
    }
  });

  it("ends a removed participant's streams with FORBIDDEN; only the creator or an ADMIN removes; direct conversations are fixed", async () => {
    const [alice, bob, carol, dave] = await users(4);
    const [admin] = await users(1, 'ADMIN');
    const id = await group(alice!, [bob!, carol!, dave!]);
    const carolMessages = await liveMessages(carol!.token, id, alice!.token);
    const carolTyping = await liveTyping(carol!.token, id, bob!.token);
    const daveMessages = await liveMessages(dave!.token, id, alice!.token);
    try {
      expect(
        codesOf(await gql(RemoveParticipantDocument, { conversationId: id, userId: carol!.id }, bob!.token)),
      ).toEqual(['FORBIDDEN']);
      const stranger = await gql(RemoveParticipantDocument, { conversationId: id, userId: 'not-there' }, alice!.token);
      expect([codesOf(stranger), fieldOf(stranger)]).toEqual([['BAD_USER_INPUT'], 'userId']);

      const after = dataOf(
        await gql(RemoveParticipantDocument, { conversationId: id, userId: carol!.id }, alice!.token),
      ).removeParticipant;
      expect(after.participants.map((p) => p.id)).not.toContain(carol!.id);
      await Promise.all([carolMessages.ended, carolTyping.ended]);
      for (const feed of [carolMessages, carolTyping] as Feed<unknown>[]) {
        expect(feed.results.at(-1)!.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
      }
      expect(codesOf(await gql(ConversationDocument, { id }, carol!.token))).toEqual(['FORBIDDEN']);
      expect(
        codesOf(await gql(SendMessageDocument, { input: { conversationId: id, body: 'let me in' } }, carol!.token)),
      ).toEqual(['FORBIDDEN']);
      const later = await send(alice!.token, id, 'after carol left');
      await daveMessages.waitFor((r) => r.data?.messageAdded.id === later.id);
      expect(carolMessages.results.some((r) => r.data?.messageAdded.id === later.id)).toBe(false);

      // Leaving ends the leaver's streams the same way.
      dataOf(await gql(LeaveConversationDocument, { conversationId: id }, dave!.token));
      await daveMessages.ended;
      expect(daveMessages.results.at(-1)!.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');

      // An ADMIN who is not a participant may remove, but still cannot read.
      const removed = dataOf(
        await gql(RemoveParticipantDocument, { conversationId: id, userId: bob!.id }, admin!.token),
      ).removeParticipant;
      expect(removed.participants.map((p) => p.id)).toEqual([alice!.id]);
      expect(codesOf(await gql(ConversationDocument, { id }, admin!.token))).toEqual(['FORBIDDEN']);

      // Added back: a fresh start with nothing unread.
      const back = dataOf(
        await gql(AddParticipantsDocument, { conversationId: id, userIds: [carol!.id, alice!.id] }, alice!.token),
      ).addParticipants;
      expect(back.participants.map((p) => p.id)).toEqual([alice!.id, carol!.id]);
      expect(dataOf(await gql(ConversationDocument, { id }, carol!.token)).conversation!.unreadCount).toBe(0);
      const unknownAdd = await gql(
        AddParticipantsDocument,
        { conversationId: id, userIds: [bob!.id, 'ghost'] },
        alice!.token,
      );
      expect([codesOf(unknownAdd), fieldOf(unknownAdd)]).toEqual([['BAD_USER_INPUT'], 'userIds[1]']);

      const direct = dataOf(await gql(CreateConversationDocument, { participantIds: [bob!.id] }, alice!.token))
        .createConversation.id;
      for (const result of [
        await gql(RemoveParticipantDocument, { conversationId: direct, userId: bob!.id }, alice!.token),
        await gql(LeaveConversationDocument, { conversationId: direct }, alice!.token),
        await gql(AddParticipantsDocument, { conversationId: direct, userIds: [carol!.id] }, alice!.token),
      ]) {
        expect([codesOf(result), reasonOf(result)]).toEqual([['CONFLICT'], 'DIRECT_CONVERSATION']);
      }
    } finally {
      await Promise.all([carolMessages.close(), carolTyping.close(), daveMessages.close()]);
    }
  });

  it.runIf(backend.name.includes('Redis'))(
    'publishes each typing expiry exactly once across two stores on one Redis',
    async () => {
      const [redisA, redisB] = [redisFor(t.backendEnv), redisFor(t.backendEnv)];
      const prefix = `{typing-test-${randomUUID()}}`;
      const stores = [redisA, redisB].map((redis) =>
        createRedisTypingStore({ redis, ttlMs: 300, sweepIntervalMs: 20, prefix }),
      );
      const expired: [number, TypingChange][] = [];
      stores.forEach((store, i) => store.onExpired((change) => expired.push([i, change])));
      try {
        const [a, b] = stores as [(typeof stores)[number], (typeof stores)[number]];
        const started = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).start('conv-1', `user-${i}`)),
        );
        expect(started.every((s) => s.outcome === 'started')).toBe(true);
        // The rate limit and the state are shared: a start on the other store is a refresh.
        expect(await b.start('conv-1', 'user-1')).toEqual({ outcome: 'refreshed' });
        expect((await a.stop('conv-1', 'user-2'))?.isTyping).toBe(false);
        expect(await b.start('conv-1', 'user-2')).toMatchObject({ outcome: 'throttled' });
        await sleep(300 + 400);
        const byUser = new Map<string, number>();
        for (const [, change] of expired) byUser.set(change.userId, (byUser.get(change.userId) ?? 0) + 1);
        expect(byUser.size).toBe(19);
        expect([...byUser.values()].every((count) => count === 1)).toBe(true);
        expect(expired.every(([, c]) => c.isTyping === false && c.conversationId === 'conv-1')).toBe(true);
        // Seqs are one sequence per conversation across both stores: 20 starts, 1 stop, 19 expiries.
        const seqs = [
          ...started.map((s) => (s.outcome === 'started' ? s.change.seq : 0)),
          ...expired.map(([, c]) => c.seq),
        ];
        expect(new Set(seqs).size).toBe(39);
        await sleep(200);
        expect(expired).toHaveLength(19);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        redisA.disconnect();
        redisB.disconnect();
      }
    },
  );
});
