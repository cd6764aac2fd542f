/**
 * Pure input rules of messaging: message bodies, client message ids, titles, page sizes and the
 * shape of a new conversation (direct or group). No I/O; the service calls these first.
 */
import { badInput } from '../../errors.js';
import { tooManyParticipants } from './messaging.errors.js';

/** Characters (Unicode code points) of a message body, after trimming. */
export const BODY_MAX_CHARS = 4000;
export const CLIENT_MESSAGE_ID_MAX = 128;
export const TITLE_MAX_CHARS = 200;
/** Participants of one conversation, the creator included. */
export const MAX_PARTICIPANTS = 100;
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 100;

const chars = (s: string): number => {
  let n = 0;
  for (const _ of s) n += 1;
  return n;
};

/** The trimmed body; 1..4000 characters. */
export function validateBody(body: string, field = 'input.body'): string {
  const trimmed = body.trim();
  if (trimmed.length === 0) throw badInput(field, 'A message needs some text');
  if (chars(trimmed) > BODY_MAX_CHARS) throw badInput(field, `A message has at most ${BODY_MAX_CHARS} characters`);
  return trimmed;
}

/** null when absent; otherwise 1..128 characters, kept exactly as sent (it is an opaque key). */
export function validateClientMessageId(id: string | null | undefined, field = 'input.clientMessageId'): string | null {
  if (id === null || id === undefined) return null;
  if (id.trim().length === 0) throw badInput(field, 'clientMessageId must not be blank (omit it instead)');
  if (id.length > CLIENT_MESSAGE_ID_MAX)
    throw badInput(field, `clientMessageId has at most ${CLIENT_MESSAGE_ID_MAX} characters`);
  return id;
}

/** The trimmed title; blank means none. */
export function validateTitle(title: string | null | undefined, field = 'title'): string | null {
  if (title === null || title === undefined) return null;
  const trimmed = title.trim();
  if (trimmed.length === 0) return null;
  if (chars(trimmed) > TITLE_MAX_CHARS) throw badInput(field, `A title has at most ${TITLE_MAX_CHARS} characters`);
  return trimmed;
}

/** `last` of Conversation.messages: 1..100, default 50. */
export function pageSize(last: number | null | undefined, field = 'last'): number {
  if (last === null || last === undefined) return PAGE_DEFAULT;
  if (!Number.isInteger(last) || last < 1 || last > PAGE_MAX)
    throw badInput(field, `last must be between 1 and ${PAGE_MAX}`);
  return last;
}

/**
 * A page of history from rows read newest first (`seq < before`, descending, `take: last`):
 * the same rows oldest first, so the newest message is last. The next older page is the one
 * `before` the first message of this page.
 */
export function pageOldestFirst<T extends { seq: number }>(newestFirst: readonly T[]): T[] {
  const page = [...newestFirst].reverse();
  for (let i = 1; i < page.length; i += 1) {
    if (page[i]!.seq <= page[i - 1]!.seq) throw new Error('history rows must be in strictly descending seq order');
  }
  return page;
}

/** The cursor of the next (older) page of `page`, or null when the page is the oldest one. */
export function olderCursor<T extends { id: string; seq: number }>(
  page: readonly T[],
  requested: number,
): string | null {
  return page.length < requested || page.length === 0 ? null : page[0]!.id;
}

/** One key per pair of users, whatever order they are given in. */
export const directKeyOf = (a: string, b: string): string => JSON.stringify(a < b ? [a, b] : [b, a]);

/** Another participant named in createConversation, with its position in `participantIds`. */
export interface NamedParticipant {
  id: string;
  index: number;
}

export type ConversationPlan =
  | { kind: 'direct'; creatorId: string; other: NamedParticipant; directKey: string }
  | { kind: 'group'; creatorId: string; others: NamedParticipant[]; title: string | null };

/**
 * createConversation(participantIds, title): the creator is always a participant (naming it is
 * allowed and ignored), repeated ids count once. Exactly one other participant and no title is a
 * direct conversation (one per pair); anything else is a group of 2..100 participants.
 */
export function planConversation(
  creatorId: string,
  participantIds: readonly string[],
  title: string | null | undefined,
): ConversationPlan {
  const cleanTitle = validateTitle(title);
  const seen = new Set<string>([creatorId]);
  const others: NamedParticipant[] = [];
  participantIds.forEach((raw, index) => {
    const id = raw;
    if (id.trim().length === 0) throw badInput(`participantIds[${index}]`, 'A participant id must not be blank');
    if (seen.has(id)) return;
    seen.add(id);
    others.push({ id, index });
  });
  if (others.length === 0) throw badInput('participantIds', 'Name at least one other participant');
  if (others.length + 1 > MAX_PARTICIPANTS) throw tooManyParticipants('participantIds', MAX_PARTICIPANTS);
  if (others.length === 1 && cleanTitle === null) {
    const other = others[0]!;
    return { kind: 'direct', creatorId, other, directKey: directKeyOf(creatorId, other.id) };
  }
  return { kind: 'group', creatorId, others, title: cleanTitle };
}
