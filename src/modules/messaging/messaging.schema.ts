/**
 * Messaging API: conversations, messages, read receipts, typing. Everything is participants
 * only: the service answers FORBIDDEN for a conversation the viewer is not in, and also for one
 * that does not exist (existence is never revealed). Every subscription here depends on the
 * viewer (membership, no self-echo), so none of them is a shared subscription.
 */
import { builder } from '../../schema/builder.js';
import { UserViewRef } from '../users/users.schema.js';
import { AFTER_SEQ_DOC, FIRST_DOC, POLL_AFTER_SEQ_DOC, eventPageRef } from '../../schema/event-page.js';
import { accessEnded, notParticipant } from './messaging.errors.js';
import type { MessageEventData, MessageView, ReadReceiptView, TypingView } from './messaging.events.js';
import { BODY_MAX_CHARS, CLIENT_MESSAGE_ID_MAX, MAX_PARTICIPANTS, PAGE_DEFAULT, PAGE_MAX } from './messaging.rules.js';
import type { ConversationView } from './messaging.service.js';
import { isAccessLost, type AccessLost } from './messaging.stream.js';

/** The payload of a stream event, or FORBIDDEN when the viewer lost access (the stream's last event). */
function payloadOf<T>(event: { data: T } | AccessLost): T {
  if (isAccessLost(event)) throw accessEnded(event.conversationId);
  return event.data;
}

const MessageRef = builder.objectRef<MessageView>('Message').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    conversationId: t.exposeID('conversationId'),
    author: t.field({ type: UserViewRef, resolve: (m) => m.author }),
    body: t.exposeString('body', { description: `Trimmed, 1..${BODY_MAX_CHARS} characters.` }),
    clientMessageId: t.exposeString('clientMessageId', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (m) => m.createdAt }),
    seq: t.exposeInt('seq', {
      description:
        'Position in the conversation (1, 2, 3, …): the order of commit, the same for every participant on every instance.',
    }),
  }),
});

/** A receipt from a query or mutation (seq null) or from a stream event (the event's seq). */
type ReadReceiptNode = ReadReceiptView & { seq?: number | null };

/** A stream event's payload with its seq (the resume cursor), or FORBIDDEN as payloadOf says. */
function withSeq<T>(event: { data: T; seq: number } | AccessLost): T & { seq: number } {
  return { ...payloadOf(event), seq: (event as { seq: number }).seq };
}

const ReadReceiptRef = builder.objectRef<ReadReceiptNode>('ReadReceipt').implement({
  description: "A participant's read position: everything up to and including lastReadMessageId.",
  fields: (t) => ({
    conversationId: t.exposeID('conversationId'),
    user: t.field({ type: UserViewRef, resolve: (r) => r.user }),
    lastReadMessageId: t.exposeID('lastReadMessageId'),
    lastReadSeq: t.exposeInt('lastReadSeq', { description: 'The seq of lastReadMessageId.' }),
    readAt: t.field({ type: 'DateTime', resolve: (r) => r.readAt }),
    seq: t.int({
      nullable: true,
      description:
        "Set on every event readReceiptUpdated delivers: the conversation's receipt-event seq (the resume cursor).",
      resolve: (r) => r.seq ?? null,
    }),
  }),
});

const TypingEventRef = builder.objectRef<TypingView>('TypingEvent').implement({
  fields: (t) => ({
    conversationId: t.exposeID('conversationId'),
    user: t.field({ type: UserViewRef, resolve: (e) => e.user }),
    isTyping: t.exposeBoolean('isTyping'),
  }),
});

/** Nested fields of a conversation read history: only for its participants (e.g. not a moderating ADMIN). */
function requireIn(conversation: ConversationView, viewerId: string | undefined): string {
  if (viewerId === undefined || !conversation.participants.some((p) => p.id === viewerId))
    throw notParticipant(conversation.id);
  return viewerId;
}

const ConversationRef = builder.objectRef<ConversationView>('Conversation').implement({
  description: 'A direct conversation (two people, no title, one per pair) or a group (2..100 participants).',
  fields: (t) => ({
    id: t.exposeID('id'),
    title: t.exposeString('title', { nullable: true }),
    isDirect: t.exposeBoolean('isDirect'),
    participants: t.field({
      type: [UserViewRef],
      description: 'In the order they joined.',
      resolve: (c) => c.participants,
    }),
    messages: t.field({
      type: [MessageRef],
      description: [
        'Newest last. Cursor-paginated backwards with `before`: the `last` messages (1..' +
          PAGE_MAX +
          ', default ' +
          PAGE_DEFAULT +
          ')',
        "older than message `before` (a message id of this conversation); the next older page is `before` this page's first message.",
      ].join(' '),
      args: { last: t.arg.int(), before: t.arg.id() },
      resolve: (c, args, ctx) => {
        requireIn(c, ctx.viewer?.id);
        return ctx.services.messaging.history(c.id, {
          last: args.last,
          before: args.before === null || args.before === undefined ? null : String(args.before),
        });
      },
    }),
    unreadCount: t.int({
      description: "Messages after the viewer's read position that others wrote.",
      resolve: (c, _args, ctx) => {
        const viewerId = requireIn(c, ctx.viewer?.id);
        return c.unreadCount ?? ctx.services.messaging.unreadCount(viewerId, c.id);
      },
    }),
    readReceipts: t.field({
      type: [ReadReceiptRef],
      description: "Every participant's read position (those who have read anything).",
      resolve: (c, _args, ctx) => {
        requireIn(c, ctx.viewer?.id);
        return c.readReceipts;
      },
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.createdAt }),
    lastMessageAt: t.field({ type: 'DateTime', nullable: true, resolve: (c) => c.lastMessageAt }),
  }),
});

const SendMessageInput = builder.inputType('SendMessageInput', {
  fields: (t) => ({
    conversationId: t.id({ required: true }),
    body: t.string({ required: true, description: `Trimmed; 1..${BODY_MAX_CHARS} characters.` }),
    clientMessageId: t.string({
      description: `Client-generated (1..${CLIENT_MESSAGE_ID_MAX} characters); resending the same id never creates a second message (the first is returned; CONFLICT if the body differs).`,
    }),
  }),
});

builder.queryFields((t) => ({
  conversation: t.field({
    type: ConversationRef,
    nullable: true,
    description: 'Participants only: FORBIDDEN otherwise (also for an id that does not exist).',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.messaging.conversation(ctx.viewer!, String(id)),
  }),
  conversations: t.field({
    type: [ConversationRef],
    description: "The viewer's conversations, newest activity (last message, else creation) first.",
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.messaging.conversations(ctx.viewer!),
  }),
}));

builder.mutationFields((t) => ({
  createConversation: t.field({
    type: ConversationRef,
    description: [
      'The viewer is always a participant. participantIds must be users who have signed in (BAD_USER_INPUT naming participantIds[i]).',
      "One other participant and no title: the pair's direct conversation (the existing one if any). Otherwise a group of 2.." +
        MAX_PARTICIPANTS +
        ' participants.',
    ].join(' '),
    authScopes: { authenticated: true },
    guard: { rate: 'conversations' },
    args: { participantIds: t.arg.idList({ required: true }), title: t.arg.string() },
    resolve: (_root, { participantIds, title }, ctx) =>
      ctx.services.messaging.createConversation(ctx.viewer!, participantIds.map(String), title),
  }),
  sendMessage: t.field({
    type: MessageRef,
    description:
      "Participants only. Clears the sender's typing indicator; the sender's read position moves to the message.",
    authScopes: { authenticated: true },
    guard: { rate: 'messages' },
    args: { input: t.arg({ type: SendMessageInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.messaging.sendMessage(ctx.viewer!, { ...input, conversationId: String(input.conversationId) }),
  }),
  markConversationRead: t.field({
    type: ReadReceiptRef,
    description:
      "Moves the viewer's read position to upToMessageId; never backwards (an older message leaves it where it is). Returns the position now; the other participants get readReceiptUpdated when it moved.",
    authScopes: { authenticated: true },
    guard: { rate: 'readReceipts' },
    args: { conversationId: t.arg.id({ required: true }), upToMessageId: t.arg.id({ required: true }) },
    resolve: (_root, { conversationId, upToMessageId }, ctx) =>
      ctx.services.messaging.markRead(ctx.viewer!, String(conversationId), String(upToMessageId)),
  }),
  setTyping: t.boolean({
    description: [
      "Ephemeral (never stored). isTyping true starts or refreshes the viewer's typing state, which ends by itself after TYPING_TTL_MS without a refresh",
      '(the others then get isTyping false). At most one start per second per user and conversation: a start sooner than that is dropped and answers false;',
      "refreshes are never dropped. Returns whether the viewer's typing state now is isTyping.",
    ].join(' '),
    authScopes: { authenticated: true },
    guard: { rate: 'typing' },
    args: { conversationId: t.arg.id({ required: true }), isTyping: t.arg.boolean({ required: true }) },
    resolve: (_root, { conversationId, isTyping }, ctx) =>
      ctx.services.messaging.setTyping(ctx.viewer!, String(conversationId), isTyping),
  }),
  addParticipants: t.field({
    type: ConversationRef,
    description:
      'Groups only; any participant may add signed-in users (BAD_USER_INPUT naming userIds[i] otherwise). Newcomers start with nothing unread.',
    authScopes: { authenticated: true },
    guard: { rate: 'conversations' },
    args: { conversationId: t.arg.id({ required: true }), userIds: t.arg.idList({ required: true }) },
    resolve: (_root, { conversationId, userIds }, ctx) =>
      ctx.services.messaging.addParticipants(ctx.viewer!, String(conversationId), userIds.map(String)),
  }),
  removeParticipant: t.field({
    type: ConversationRef,
    description:
      "Groups only; the conversation's creator or an ADMIN. The removed user's open messageAdded, readReceiptUpdated and typing subscriptions end with FORBIDDEN, on every instance.",
    authScopes: { authenticated: true },
    guard: { rate: 'conversations' },
    args: { conversationId: t.arg.id({ required: true }), userId: t.arg.id({ required: true }) },
    resolve: (_root, { conversationId, userId }, ctx) =>
      ctx.services.messaging.removeParticipant(ctx.viewer!, String(conversationId), String(userId)),
  }),
  leaveConversation: t.boolean({
    description: "Groups only. The viewer's open subscriptions to the conversation end with FORBIDDEN.",
    authScopes: { authenticated: true },
    guard: { rate: 'conversations' },
    args: { conversationId: t.arg.id({ required: true }) },
    resolve: (_root, { conversationId }, ctx) => ctx.services.messaging.leave(ctx.viewer!, String(conversationId)),
  }),
}));

builder.subscriptionFields((t) => ({
  messageAdded: t.field({
    delivery: { kind: 'events', maxQueued: 100 },
    type: MessageRef,
    description:
      'Participants only. Messages in seq order, committed from now on, or every one after afterSeq first (as far back as the conversation goes). Ends with a FORBIDDEN error when the viewer stops being a participant.',
    authScopes: { authenticated: true },
    args: { conversationId: t.arg.id({ required: true }), afterSeq: t.arg.int({ description: AFTER_SEQ_DOC }) },
    subscribe: (_root, { conversationId, afterSeq }, ctx) =>
      ctx.services.messaging.subscribeMessages(ctx.viewer!, String(conversationId), afterSeq),
    resolve: (event) => payloadOf(event),
  }),
  readReceiptUpdated: t.field({
    delivery: { kind: 'events', maxQueued: 100 },
    type: ReadReceiptRef,
    description:
      "Participants only. The other participants' read positions as they move forward, in seq order, from now on or after afterSeq (the viewer's own are not echoed: markConversationRead returns it; a message's author has read up to it). Ends with FORBIDDEN when the viewer stops being a participant.",
    authScopes: { authenticated: true },
    args: { conversationId: t.arg.id({ required: true }), afterSeq: t.arg.int({ description: AFTER_SEQ_DOC }) },
    subscribe: (_root, { conversationId, afterSeq }, ctx) =>
      ctx.services.messaging.subscribeReadReceipts(ctx.viewer!, String(conversationId), afterSeq),
    resolve: (event) => withSeq(event),
  }),
  typing: t.field({
    delivery: { kind: 'events', maxQueued: 50 },
    type: TypingEventRef,
    description:
      "Participants only; never echoes the subscriber's own typing. Ends with FORBIDDEN when the viewer stops being a participant.",
    authScopes: { authenticated: true },
    args: { conversationId: t.arg.id({ required: true }) },
    subscribe: (_root, { conversationId }, ctx) =>
      ctx.services.messaging.subscribeTyping(ctx.viewer!, String(conversationId)),
    resolve: (event) => payloadOf(event),
  }),
}));

const MessageEventPageRef = eventPageRef<MessageEventData, MessageView>(
  'MessageEventPage',
  MessageRef,
  ({ data: { recipients: _recipients, ...message } }) => message,
  'messages',
);
const ReadReceiptEventPageRef = eventPageRef<ReadReceiptView, ReadReceiptNode>(
  'ReadReceiptEventPage',
  ReadReceiptRef,
  (event) => ({ ...event.data, seq: event.seq }),
  "other participants' read receipts",
);

builder.queryFields((t) => ({
  messageEvents: t.field({
    type: MessageEventPageRef,
    description: 'Participants only. Polling fallback of messageAdded: the messages after afterSeq.',
    authScopes: { authenticated: true },
    args: {
      conversationId: t.arg.id({ required: true }),
      afterSeq: t.arg.int({ description: POLL_AFTER_SEQ_DOC }),
      first: t.arg.int({ description: FIRST_DOC }),
    },
    guard: { rate: 'polls' },
    resolve: (_root, { conversationId, afterSeq, first }, ctx) =>
      ctx.services.messaging.messageEvents(ctx.viewer!, String(conversationId), { afterSeq, first }),
  }),
  readReceiptEvents: t.field({
    type: ReadReceiptEventPageRef,
    description:
      "Participants only. Polling fallback of readReceiptUpdated: the other participants' receipts after afterSeq.",
    authScopes: { authenticated: true },
    args: {
      conversationId: t.arg.id({ required: true }),
      afterSeq: t.arg.int({ description: POLL_AFTER_SEQ_DOC }),
      first: t.arg.int({ description: FIRST_DOC }),
    },
    guard: { rate: 'polls' },
    resolve: (_root, { conversationId, afterSeq, first }, ctx) =>
      ctx.services.messaging.readReceiptEvents(ctx.viewer!, String(conversationId), { afterSeq, first }),
  }),
}));
