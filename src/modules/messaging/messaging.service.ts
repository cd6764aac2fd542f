/**
 * Messaging: direct and group conversations, messages in commit order, read receipts, typing
 * indicators, and membership changes that end the removed participants' streams.
 *
 * Authorization: participants only, checked here for every query, mutation and subscription.
 * A conversation that does not exist answers exactly like one the viewer is not in (FORBIDDEN),
 * so nobody can probe which ids exist. ADMINs may additionally remove participants of any group.
 *
 * Ordering and locks (always in this order, so no two transactions wait on each other in a cycle):
 * TopicSequence `messages:<id>` → Conversation row → ConversationParticipant rows → other topics.
 * - sendMessage takes `nextSeq(messages:<id>)` first: that row lock serialises the conversation's
 *   commits on every instance, so a message's seq is its commit position. Under the lock it reads
 *   the participants (the sender must be one; they are the event's recipients) and checks the
 *   clientMessageId, so a resend never consumes a seq: seqs are 1, 2, 3, … without gaps.
 * - Membership changes (add, remove, leave) read `messages:<id>` FOR SHARE first: they wait for
 *   in-flight sends, and sends wait for them, so every message's recipient list is exact.
 * - Subscribing reads the access topic's seq, then checks participation, then the stream's start
 *   seq: a removal that commits after the check is always seen by the stream.
 */
import { createConversationOperations } from './messaging.conversations.service.js';
import { createMessagingCore } from './messaging.queries.js';
import { createMessageOperations } from './messaging.messages.service.js';
import { createMessagingStreams } from './messaging.subscriptions.service.js';
import type { MessagingServiceDeps } from './messaging.queries.js';

// The shared types live with the core the parts are built over (messaging.queries.ts), so no
// part imports this file back.
export type { ConversationView, MessagingServiceDeps, SendMessageInput } from './messaging.queries.js';

/** The messaging service: its parts over one shared core (messaging.queries.ts). */
export function createMessagingService(deps: MessagingServiceDeps) {
  const core = createMessagingCore(deps);
  return {
    ...createConversationOperations(core),
    ...createMessageOperations(core),
    ...createMessagingStreams(core),
    /** Stops the typing store's timers and sweeps. */
    async close(): Promise<void> {
      await core.typing.close();
    },
  };
}

export type MessagingService = ReturnType<typeof createMessagingService>;
