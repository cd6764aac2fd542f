/**
 * Pure rules of live channels: names, event types, payload size, paging, and who may read or
 * publish which channel.
 *
 * Access (by name prefix):
 * - `admin:…`     read by ADMIN only (operations dashboards, moderation feeds).
 * - `activity:…`  public to read; written by the server only (competition activity feeds), so
 *                 publishToChannel refuses it even for ADMIN: the feed stays what happened.
 * - anything else public to read; publishToChannel is ADMIN; server code publishes anywhere.
 */
import { Role } from '../../generated/prisma/enums.js';
import { badInput, forbidden, unauthenticated } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';

export const CHANNEL_NAME = /^[a-z0-9:_-]{1,100}$/;
export const EVENT_TYPE = /^[A-Za-z0-9:_.-]{1,100}$/;
export const DATA_BYTES_MAX = 16_384;
export const HISTORY_DEFAULT_LIMIT = 1_000;
export const PAGE_DEFAULT = 100;
export const PAGE_MAX = 200;

export const ADMIN_ONLY_PREFIXES = ['admin:'] as const;
export const SERVER_ONLY_PREFIXES = ['activity:'] as const;

export function validateChannel(channel: string, field = 'channel'): string {
  if (typeof channel !== 'string' || !CHANNEL_NAME.test(channel)) {
    throw badInput(field, `${field} must match [a-z0-9:_-]{1,100}`);
  }
  return channel;
}

export function validateType(type: string, field = 'type'): string {
  if (typeof type !== 'string' || !EVENT_TYPE.test(type))
    throw badInput(field, `${field} must match [A-Za-z0-9:_.-]{1,100}`);
  return type;
}

/** The event's data as stored: any JSON value but null/undefined (use {}), at most 16 KiB. */
export function validateData(data: unknown, field = 'data'): unknown {
  if (data === undefined || data === null) return {};
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch {
    json = undefined;
  }
  if (json === undefined) throw badInput(field, `${field} must be JSON`);
  if (Buffer.byteLength(json, 'utf8') > DATA_BYTES_MAX)
    throw badInput(field, `${field} must be at most ${DATA_BYTES_MAX} bytes as JSON`);
  return data;
}

export function validateAfterSeq(afterSeq: number | null | undefined, field = 'afterSeq'): number | null {
  if (afterSeq === null || afterSeq === undefined) return null;
  if (!Number.isInteger(afterSeq) || afterSeq < 0) throw badInput(field, `${field} must be a non-negative integer`);
  return afterSeq;
}

export function pageSize(first: number | null | undefined, field = 'first'): number {
  const n = first ?? PAGE_DEFAULT;
  if (!Number.isInteger(n) || n < 1 || n > PAGE_MAX) throw badInput(field, `${field} must be 1..${PAGE_MAX}`);
  return n;
}

const hasPrefix = (channel: string, prefixes: readonly string[]): boolean =>
  prefixes.some((p) => channel.startsWith(p));

export function isAdminOnly(channel: string): boolean {
  return hasPrefix(channel, ADMIN_ONLY_PREFIXES);
}

export function isServerOnly(channel: string): boolean {
  return hasPrefix(channel, SERVER_ONLY_PREFIXES);
}

/** Throws unless `viewer` may read `channel` (history or subscription). */
export function assertCanRead(viewer: Viewer | null, channel: string): void {
  if (!isAdminOnly(channel)) return;
  if (viewer === null) throw unauthenticated();
  if (viewer.role !== Role.ADMIN) throw forbidden(`Channel ${channel} is readable by ADMIN only`);
}

/** Throws unless the API (publishToChannel, already ADMIN) may write `channel`. */
export function assertApiCanPublish(channel: string): void {
  if (isServerOnly(channel)) throw forbidden(`Channel ${channel} is written by the server only`);
}

/** Whether history after `afterSeq` lost events to pruning (the client should reload its state). */
export function missedEvents(afterSeq: number, oldestSeq: number | null, latestSeq: number): boolean {
  return oldestSeq !== null && latestSeq > afterSeq && afterSeq + 1 < oldestSeq;
}
