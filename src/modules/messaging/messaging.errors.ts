/**
 * The messaging module's named errors.
 *
 * Existence is never leaked: a conversation that does not exist and one the viewer is not a
 * participant of both answer FORBIDDEN with the same message (queries, mutations, subscriptions).
 */
import { AppError, badInput, conflict, forbidden } from '../../errors.js';

export const notParticipant = (conversationId: string): AppError =>
  forbidden(`You are not a participant of conversation ${conversationId}`);

export const accessEnded = (conversationId: string): AppError =>
  forbidden(`You are no longer a participant of conversation ${conversationId}`);

export const notModerator = (conversationId: string): AppError =>
  forbidden(`Only the creator of conversation ${conversationId} or an ADMIN may remove participants`);

export const directConversationFixed = (conversationId: string): AppError =>
  conflict(`Conversation ${conversationId} is a direct conversation: its participants cannot change`, {
    conversationId,
    reason: 'DIRECT_CONVERSATION',
  });

export const clientMessageIdReused = (clientMessageId: string, messageId: string): AppError =>
  conflict(`clientMessageId "${clientMessageId}" was already used for a different message (${messageId})`, {
    field: 'input.clientMessageId',
    messageId,
    reason: 'CLIENT_MESSAGE_ID_REUSED',
  });

export const unknownUser = (field: string, userId: string): AppError =>
  badInput(field, `User ${userId} does not exist (users exist once they have signed in)`);

export const tooManyParticipants = (field: string, max: number): AppError =>
  badInput(field, `A conversation has at most ${max} participants`);

export const messageNotInConversation = (field: string, messageId: string, conversationId: string): AppError =>
  badInput(field, `Message ${messageId} is not in conversation ${conversationId}`);
