/**
 * The polling counterpart of a resumable subscription: `<x>Events(…, afterSeq, first)` returns a
 * page of the events that subscription would deliver after that cursor, with the cursor to send
 * next. One shape for every stream, so a client polls them all the same way.
 */
import type { ObjectRef } from '@pothos/core';
import type { EventPage } from '../realtime/resume.js';
import { PAGE_DEFAULT, PAGE_MAX } from '../realtime/resume.js';
import type { RealtimeEvent } from '../realtime/topics.js';
import { builder } from './builder.js';

/** Descriptions of the arguments every resumable subscription and polling query shares. */
export const AFTER_SEQ_DOC =
  'Resume: the last seq processed. Every event after it is delivered first, in order, exactly once (also on another instance), then the live ones; RESYNC_REQUIRED at once when they are no longer kept (RESUME_WINDOW_SECONDS) or afterSeq is ahead. Over SSE, Last-Event-ID does the same.';
export const POLL_AFTER_SEQ_DOC =
  "The last seq processed (the previous page's cursor); omitted: start from now (no events, latestSeq).";
export const FIRST_DOC = `1..${PAGE_MAX} (default ${PAGE_DEFAULT})`;

type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

export function eventPageRef<T, Item>(
  name: string,
  item: ObjectRef<BuilderTypes, Item>,
  toItem: (event: RealtimeEvent<T>) => Item,
  what: string,
) {
  return builder.objectRef<EventPage<T>>(name).implement({
    description: `A page of ${what} after a cursor, oldest first: exactly what the subscription would deliver, in the same order.`,
    fields: (t) => ({
      events: t.field({ type: [item], resolve: (page) => page.events.map(toItem) }),
      cursor: t.exposeInt('cursor', {
        description: 'Send as afterSeq next time (covers events this viewer does not get, too).',
      }),
      latestSeq: t.exposeInt('latestSeq', { description: "The stream's latest seq when this page was read." }),
      hasMore: t.exposeBoolean('hasMore', { description: 'More events follow cursor: ask again now.' }),
    }),
  });
}
