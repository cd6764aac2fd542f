/**
 * Pure rules of notifications: input validation, priorities and the backlog's order, the dedup
 * window and TTLs. No database, no clock of its own (callers pass `now`).
 */
import { NotificationPriority } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';

export const TYPE_MAX = 100;
export const TITLE_MAX = 200;
export const BODY_MAX = 2_000;
export const DEDUP_KEY_MAX = 200;
export const TTL_SECONDS_MAX = 31_536_000; // one year
/** Serialised size of `data`: notifications travel to every connection of the user. */
export const DATA_BYTES_MAX = 16_384;
export const LIST_DEFAULT = 50;
export const LIST_MAX = 100;
export const MARK_READ_MAX = 1_000;

/** LOW < NORMAL < HIGH < URGENT < CRITICAL: the declaration order of the enum (also in PostgreSQL). */
export const PRIORITY_ORDER: readonly NotificationPriority[] = [
  NotificationPriority.LOW,
  NotificationPriority.NORMAL,
  NotificationPriority.HIGH,
  NotificationPriority.URGENT,
  NotificationPriority.CRITICAL,
];

export const priorityRank = (priority: NotificationPriority): number => PRIORITY_ORDER.indexOf(priority);

export interface NotifyInput {
  type: string;
  title: string;
  body?: string | null;
  priority?: NotificationPriority | null;
  data?: unknown;
  /** Unset: the notification never expires. */
  ttlSeconds?: number | null;
  /** Same key for the same user while a notification with it is unexpired: that one is kept. */
  dedupKey?: string | null;
}

/** A validated NotifyInput, with defaults applied. */
export interface NotificationDraft {
  type: string;
  title: string;
  body: string | null;
  priority: NotificationPriority;
  data: unknown;
  ttlSeconds: number | null;
  dedupKey: string | null;
}

function text(field: string, raw: unknown, max: number, opts: { required: boolean; trim: boolean }): string | null {
  if (raw === undefined || raw === null) {
    if (opts.required) throw badInput(field, `${field} is required`);
    return null;
  }
  if (typeof raw !== 'string') throw badInput(field, `${field} must be a string`);
  const value = opts.trim ? raw.trim() : raw;
  if (opts.required && value.length === 0) throw badInput(field, `${field} must be 1..${max} characters`);
  if (value.length > max) throw badInput(field, `${field} must be at most ${max} characters`);
  return value;
}

/** `prefix` names the input path in errors (`input` → `input.title`). */
export function validateNotify(input: NotifyInput, prefix = 'input'): NotificationDraft {
  const type = text(`${prefix}.type`, input.type, TYPE_MAX, { required: true, trim: true })!;
  const title = text(`${prefix}.title`, input.title, TITLE_MAX, { required: true, trim: true })!;
  const body = text(`${prefix}.body`, input.body, BODY_MAX, { required: false, trim: false });
  const priority = input.priority ?? NotificationPriority.NORMAL;
  if (!PRIORITY_ORDER.includes(priority))
    throw badInput(`${prefix}.priority`, `${prefix}.priority must be one of ${PRIORITY_ORDER.join(', ')}`);
  const ttlSeconds = input.ttlSeconds ?? null;
  if (ttlSeconds !== null && (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > TTL_SECONDS_MAX)) {
    throw badInput(`${prefix}.ttlSeconds`, `${prefix}.ttlSeconds must be an integer in 1..${TTL_SECONDS_MAX}`);
  }
  const dedupKey = input.dedupKey ?? null;
  if (dedupKey !== null && (typeof dedupKey !== 'string' || dedupKey.length === 0 || dedupKey.length > DEDUP_KEY_MAX)) {
    throw badInput(`${prefix}.dedupKey`, `${prefix}.dedupKey must be 1..${DEDUP_KEY_MAX} characters`);
  }
  const data = input.data ?? null;
  if (data !== null) {
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(data) ?? '', 'utf8');
    } catch {
      throw badInput(`${prefix}.data`, `${prefix}.data must be JSON`);
    }
    if (size > DATA_BYTES_MAX)
      throw badInput(`${prefix}.data`, `${prefix}.data must be at most ${DATA_BYTES_MAX} bytes as JSON`);
  }
  return { type, title, body, priority, data, ttlSeconds, dedupKey };
}

export function expiresAtFor(ttlSeconds: number | null, now: Date): Date | null {
  return ttlSeconds === null ? null : new Date(now.getTime() + ttlSeconds * 1000);
}

/** Whether a notification still counts: unexpired at `now` (no expiry: forever). */
export function isLive(expiresAt: Date | string | null, now: Date): boolean {
  return expiresAt === null || new Date(expiresAt).getTime() > now.getTime();
}

/**
 * The dedup window: an earlier notification of the same user with the same key suppresses a new
 * one while it is unexpired (read or not). Returns the one to keep, or null to create a new one.
 */
export function dedupHit<
  T extends { dedupKey: string | null; expiresAt: Date | string | null; createdAt: Date | string },
>(existing: readonly T[], dedupKey: string | null, now: Date): T | null {
  if (dedupKey === null) return null;
  let hit: T | null = null;
  for (const candidate of existing) {
    if (candidate.dedupKey !== dedupKey || !isLive(candidate.expiresAt, now)) continue;
    if (hit === null || new Date(candidate.createdAt).getTime() > new Date(hit.createdAt).getTime()) hit = candidate;
  }
  return hit;
}

export interface BacklogItem {
  priority: NotificationPriority;
  createdAt: Date | string;
  seq: number;
}

/** The backlog's order: highest priority first, then oldest first (then creation order). */
export function compareBacklog(a: BacklogItem, b: BacklogItem): number {
  return (
    priorityRank(b.priority) - priorityRank(a.priority) ||
    new Date(a.createdAt).getTime() - new Date(b.createdAt).getTime() ||
    a.seq - b.seq
  );
}

export function listLimit(first: number | null | undefined): number {
  const n = first ?? LIST_DEFAULT;
  if (!Number.isInteger(n) || n < 1 || n > LIST_MAX) throw badInput('first', `first must be 1..${LIST_MAX}`);
  return n;
}

export function validateIds(ids: readonly string[]): string[] {
  if (ids.length > MARK_READ_MAX) throw badInput('ids', `ids may list at most ${MARK_READ_MAX} notifications`);
  return [...new Set(ids)];
}
