/**
 * The transactional outbox against a real crash: the server process dies by SIGKILL right after a
 * message's transaction committed and before its 'message.committed' event was delivered (the
 * test-only OUTBOX_TEST_CRASH_AFTER_COMMIT hook, honoured with NODE_ENV=test only). Restarted on
 * the same DATA_DIR, the server's outbox sweep delivers the event: the offline recipient gets the
 * MESSAGE notification, and their notificationAdded stream shows it exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  CreateConversationDocument,
  MeDocument,
  NotificationAddedDocument,
  NotificationsDocument,
  SendMessageDocument,
  SendNotificationDocument,
  type NotificationAddedSubscription,
} from '../generated/graphql.js';
import { subscribe, untilSentinel, type Feed } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { seedPGlite, startServerProcess, type ServerProcess } from '../support/server-process.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const gql = <R, V>(server: ServerProcess, doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string) =>
  execute(fetch, server.graphqlUrl, doc, variables, token);

it('a process killed between a commit and its delivery delivers the notification after restart, exactly once', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-outbox-'));
  dirs.push(dataDir);
  await seedPGlite(dataDir); // the subject is the crash and the restart, not a first start
  const [admin, ann, bob] = await Promise.all([
    tokenFor({ sub: 'e2e-outbox-admin', name: 'Admin', role: 'ADMIN' }),
    tokenFor({ sub: 'e2e-outbox-ann', name: 'Ann' }),
    tokenFor({ sub: 'e2e-outbox-bob', name: 'Bob' }),
  ]);

  const crashing = await startServerProcess({ OUTBOX_TEST_CRASH_AFTER_COMMIT: 'message.committed' }, { dataDir });
  let restarted: ServerProcess | undefined;
  let feed: Feed<NotificationAddedSubscription> | undefined;
  try {
    for (const token of [ann, bob]) dataOf(await gql(crashing, MeDocument, {}, token));
    const conversation = dataOf(
      await gql(crashing, CreateConversationDocument, { participantIds: ['e2e-outbox-bob'], title: 'Crash' }, ann),
    ).createConversation;
    const input = { conversationId: conversation.id, body: 'survives the crash', clientMessageId: 'crash-1' };
    // The commit happens; the process dies before answering.
    await expect(gql(crashing, SendMessageDocument, { input }, ann)).rejects.toThrow();
    expect(await crashing.stop()).toMatchObject({ signal: 'SIGKILL' });

    restarted = await startServerProcess({}, { dataDir });
    const server = restarted;
    // The message was committed: resending its clientMessageId returns it (and records nothing new).
    const message = dataOf(await gql(server, SendMessageDocument, { input }, ann)).sendMessage;
    expect(message).toMatchObject({ body: 'survives the crash', clientMessageId: 'crash-1' });

    // Bob has no connection, so the sweep's delivery notifies him (OUTBOX_SWEEP_MS, after the grace).
    const deadline = Date.now() + 30_000;
    let listed = dataOf(await gql(server, NotificationsDocument, {}, bob)).notifications;
    while (listed.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      listed = dataOf(await gql(server, NotificationsDocument, {}, bob)).notifications;
    }
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ type: 'MESSAGE', data: { messageId: message.id } });

    // On his stream: the backlog holds it once, and nothing else arrives before a sentinel.
    feed = subscribe('sse', server.url, NotificationAddedDocument, {}, bob);
    const delivered = await untilSentinel(
      feed,
      () =>
        gql(
          server,
          SendNotificationDocument,
          { input: { userId: 'e2e-outbox-bob', type: 'SENTINEL', title: 's' } },
          admin,
        ),
      (r) => r.data?.notificationAdded.type === 'SENTINEL',
      15_000,
    );
    expect(delivered.map((r) => r.data?.notificationAdded)).toEqual([
      expect.objectContaining({ type: 'MESSAGE', data: expect.objectContaining({ messageId: message.id }) }),
    ]);
  } finally {
    await feed?.close();
    await crashing.stop();
    await restarted?.stop();
  }
}, 120_000);
