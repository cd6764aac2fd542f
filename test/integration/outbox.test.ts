/**
 * The transactional outbox (src/outbox.ts) on both backends: a durable domain event is written in
 * its emitter's transaction (a rollback leaves none) and delivered after the commit; a row a crash
 * left undelivered is delivered by a sweep; a replay after a crash (the handler wrote, the row was
 * not marked) writes nothing twice; relays sharing one database handle each row exactly once.
 *
 * The app sweeps only when a test asks (OUTBOX_SWEEP_MS=0), so the rows each test leaves are its own.
 * The process-level crash (SIGKILL between commit and delivery, restart) is test/e2e/outbox.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CreateCompetitionDocument,
  CreateConversationDocument,
  MeDocument,
  OpenCompetitionDocument,
  SendMessageDocument,
} from '../generated/graphql.js';
import { createOutbox, type OutboxRecord } from '../../src/outbox.js';
import { useTestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { dataOf, tokenFor } from '../support/graphql.js';

describe.each(backends)('outbox on $name', (backend) => {
  const t = useTestApp(backend, { OUTBOX_SWEEP_MS: '0' });
  const prisma = () => t.app.database.prisma;
  let admin: string;
  let n = 0;

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'outbox-admin', name: 'Ada', role: 'ADMIN' });
  });

  async function user(prefix: string) {
    n += 1;
    const id = `${prefix}-${n}`;
    const token = await tokenFor({ sub: id, name: `${prefix} ${n}`, role: 'AUDIENCE' });
    dataOf(await t.gql(MeDocument, {}, token));
    return { id, token, name: `${prefix} ${n}` };
  }

  /** The row as a crashed relay leaves it: unprocessed, unclaimed, older than the sweep's grace. */
  async function orphan(id: string): Promise<void> {
    await prisma().$executeRaw`
      UPDATE "OutboxEvent" SET "processedAt" = NULL, "claimedUntil" = NULL, "createdAt" = "createdAt" - interval '1 minute'
      WHERE "id" = ${id}`;
  }

  const messageNotifications = (userId: string, messageId: string) =>
    prisma().notification.count({ where: { userId, type: 'MESSAGE', dedupKey: `message:${messageId}` } });

  it('a message and its event commit together; delivered after the commit, and a replay notifies nobody twice', async () => {
    const [ann, bob] = await Promise.all([user('ann'), user('bob')]); // Bob has no connection: he is notified
    const conversation = dataOf(
      await t.gql(CreateConversationDocument, { participantIds: [bob.id], title: 'Outbox' }, ann.token),
    ).createConversation;
    const message = dataOf(
      await t.gql(SendMessageDocument, { input: { conversationId: conversation.id, body: 'hello' } }, ann.token),
    ).sendMessage;
    await t.app.outbox.idle();

    const rows = await prisma().outboxEvent.findMany({
      where: { name: 'message.committed', payload: { path: ['message', 'id'], equals: message.id } },
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ attempts: 1, claimedUntil: null });
    expect(rows[0]!.processedAt).not.toBeNull();
    expect(rows[0]!.payload).toMatchObject({ recipients: [bob.id], message: { id: message.id, body: 'hello' } });
    expect(await messageNotifications(bob.id, message.id)).toBe(1);

    // The relay died after the notification was written and before the row was marked: replayed.
    await orphan(rows[0]!.id);
    await t.app.outbox.sweep();
    const replayed = await prisma().outboxEvent.findUniqueOrThrow({ where: { id: rows[0]!.id } });
    expect(replayed.attempts).toBe(2);
    expect(replayed.processedAt).not.toBeNull();
    expect(await messageNotifications(bob.id, message.id)).toBe(1);
  });

  it('a rolled-back transaction leaves no event', async () => {
    let recorded: OutboxRecord | undefined;
    await expect(
      prisma().$transaction(async (tx) => {
        recorded = await t.app.outbox.record(tx, 'competition.statusChanged', { id: 'x', title: 'x', status: 'OPEN' });
        throw new Error('the emitter failed after recording');
      }),
    ).rejects.toThrow('the emitter failed after recording');
    expect(recorded).toBeDefined();
    expect(await prisma().outboxEvent.findUnique({ where: { id: recorded!.id } })).toBeNull();
  });

  it('an event committed and never delivered (the process died) is delivered by a sweep, once', async () => {
    const [cat, dan] = await Promise.all([user('cat'), user('dan')]);
    const messageId = `m-${n}`;
    // What sendMessage's transaction records; the process "dies" before calling committed().
    const recorded = await prisma().$transaction((tx) =>
      t.app.outbox.record(tx, 'message.committed', {
        message: {
          id: messageId,
          conversationId: 'c-outbox',
          author: { id: cat.id, name: cat.name },
          body: 'left behind',
          clientMessageId: null,
          seq: 1,
          createdAt: new Date().toISOString(),
        },
        recipients: [dan.id],
      }),
    );
    await t.app.outbox.sweep(); // younger than the grace: left to the instance that committed it
    expect(await messageNotifications(dan.id, messageId)).toBe(0);

    await orphan(recorded.id);
    await t.app.outbox.sweep();
    await t.app.outbox.sweep();
    expect(await messageNotifications(dan.id, messageId)).toBe(1);
    expect(await prisma().outboxEvent.findUniqueOrThrow({ where: { id: recorded.id } })).toMatchObject({
      attempts: 1,
      claimedUntil: null,
    });
  });

  it('an activity entry is written once when its event is replayed (receipt in the entry transaction)', async () => {
    const { createCompetition } = dataOf(
      await t.gql(CreateCompetitionDocument, { input: { title: 'Replayed', votingMethod: 'SIMPLE' } }, admin),
    );
    dataOf(await t.gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    await t.app.outbox.idle();
    const channel = `activity:${createCompetition.id}`;
    const opened = () => prisma().channelEvent.count({ where: { channel, type: 'COMPETITION_OPENED' } });
    expect(await opened()).toBe(1);

    const [row] = await prisma().outboxEvent.findMany({
      where: { name: 'competition.statusChanged', payload: { path: ['id'], equals: createCompetition.id } },
    });
    expect(await prisma().outboxReceipt.findMany({ where: { eventId: row!.id } })).toEqual([
      { eventId: row!.id, handler: 'activity:competition' },
    ]);
    await orphan(row!.id);
    await t.app.outbox.sweep();
    expect((await prisma().outboxEvent.findUniqueOrThrow({ where: { id: row!.id } })).attempts).toBe(2);
    expect(await opened()).toBe(1);
  });

  it('relays sharing the database claim each row exactly once, and retry a failed delivery later', async () => {
    const ROWS = 60;
    const seen: string[][] = [[], [], []];
    let failOnce: string | undefined;
    const relays = seen.map((log) =>
      createOutbox({
        prisma: prisma(),
        graceMs: 0,
        sweepMs: 0,
        batch: 7,
        onError: () => undefined,
        async dispatch(_name, _payload, delivery) {
          log.push(delivery.id);
          await new Promise((resolve) => setImmediate(resolve)); // let the other relays claim meanwhile
          if (delivery.id === failOnce) {
            failOnce = undefined;
            throw new Error('the handler failed: retried after a backoff');
          }
        },
      }),
    );
    const ids: string[] = [];
    for (let i = 0; i < ROWS; i += 1) {
      ids.push(
        (await prisma().$transaction((tx) => relays[0]!.record(tx, 'session.changed', { test: 'compete', i }))).id,
      );
    }
    failOnce = ids[3];

    await Promise.all(relays.flatMap((relay) => [relay.sweep(), relay.sweep()]));
    const handled = seen.flat();
    expect([...handled].sort()).toEqual([...ids].sort()); // every row once, by one relay
    const failed = await prisma().outboxEvent.findUniqueOrThrow({ where: { id: ids[3]! } });
    expect(failed.processedAt).toBeNull();
    expect(failed.claimedUntil).not.toBeNull(); // held back for its backoff, then swept again
    expect(await prisma().outboxEvent.count({ where: { id: { in: ids }, processedAt: null } })).toBe(1);

    // After the backoff (a relay whose clock is past it), delivered again and marked.
    const later = createOutbox({
      prisma: prisma(),
      graceMs: 0,
      sweepMs: 0,
      now: () => new Date(Date.now() + 10_000),
      onError: () => undefined,
      async dispatch(_name, _payload, delivery) {
        seen[0]!.push(delivery.id);
      },
    });
    await later.sweep();
    expect(seen.flat().filter((id) => id === ids[3])).toHaveLength(2);
    expect(await prisma().outboxEvent.count({ where: { id: { in: ids }, processedAt: null } })).toBe(0);
    await Promise.all([...relays, later].map((relay) => relay.close()));
  });
});
