/**
 * The last resort when no stream gets through: each operation becomes its polling query over
 * plain HTTP POSTs (streams.ts), every pollIntervalMs, at once again while a page says `hasMore`.
 * Resumable fields page through their events from the cursor; snapshot fields deliver the state
 * when it changed. A fresh token is asked for on every request. Operations without a polling
 * query wait for a streaming transport (the client probes for one).
 */
import { postGraphQL } from './http.js';
import {
  ConnectionFailure,
  Lifecycle,
  quietTimer,
  type Operation,
  type OperationSink,
  type Session,
  type SessionContext,
} from './session.js';
import type { Result } from './types.js';

interface Page {
  events?: Record<string, unknown>[];
  cursor?: number;
  latestSeq?: number;
  hasMore?: boolean;
  missed?: boolean;
}

export async function openPollSession(ctx: SessionContext): Promise<Session> {
  const stops = new Set<() => void>();
  const lifecycle = new Lifecycle(ctx, () => {
    for (const stop of [...stops]) stop();
  });

  const request = async (query: string, variables: Record<string, unknown>, operationName?: string): Promise<Result> =>
    postGraphQL(ctx.fetch, ctx.url, await ctx.getToken(), {
      query,
      variables,
      ...(operationName && { operationName }),
    });

  const session: Session = {
    transport: 'poll',
    url: ctx.url,
    start(operation: Operation, sink: OperationSink) {
      const plan = operation.poll;
      let stopped = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stop = (): void => {
        stopped = true;
        clearTimeout(timer);
        stops.delete(stop);
      };
      if (!plan) return stop;
      stops.add(stop);
      const key = operation.responseKey;
      const cursorName = operation.cursorVariable ?? 'afterSeq';
      let variables = { ...operation.variables };
      /** Snapshots delivered last, as JSON (one per list position), to deliver only changes. */
      let last: string[] = [];

      const deliverSnapshot = (value: unknown): void => {
        const items: unknown[] = plan.shape === 'snapshot-list' ? (Array.isArray(value) ? value : []) : [value];
        const json = items.map((item) => JSON.stringify(item));
        json.forEach((text, i) => {
          if (text !== last[i] && items[i] != null && !stopped) sink.next({ data: { [key]: items[i] } });
        });
        last = json;
      };

      /** Delivers a page's events; returns the cursor to ask from next. */
      const deliverPage = (page: Page): number | null => {
        const from = (variables[cursorName] as number | null | undefined) ?? null;
        // channelEvents without a cursor answers from the channel's start: there, only its latest seq counts.
        if (plan.shape === 'history' && from === null) return page.latestSeq ?? null;
        const events = page.events ?? [];
        for (const event of events) if (!stopped) sink.next({ data: { [key]: event } });
        const lastSeq = events.length > 0 ? ((events[events.length - 1]!['seq'] as number | undefined) ?? null) : null;
        // channelEvents has no cursor: the last event's seq. The others' cursor may pass events this viewer does not get.
        const next = plan.shape === 'history' ? (lastSeq ?? from) : (page.cursor ?? lastSeq ?? from);
        if (next !== null && next !== lastSeq) sink.cursor?.(next);
        return next;
      };

      const resync = (page: Page): Result => {
        const afterSeq = (variables[cursorName] as number | null | undefined) ?? null;
        const extensions = {
          code: 'RESYNC_REQUIRED',
          retryable: false,
          reason: 'NOT_KEPT',
          afterSeq,
          latestSeq: page.latestSeq ?? null,
        };
        return { errors: [{ message: `the events after seq ${afterSeq} are no longer kept`, extensions }] };
      };

      const round = async (): Promise<void> => {
        let result: Result;
        try {
          result = await request(plan.query, variables);
        } catch (error) {
          if (!stopped)
            lifecycle.end(error instanceof ConnectionFailure ? error : new ConnectionFailure('down', String(error)));
          return;
        }
        if (stopped) return;
        const value = result.data?.[key];
        const page = value as Page;
        const failed =
          value == null
            ? { errors: result.errors ?? [{ message: 'no data' }] }
            : plan.shape === 'history' && page.missed === true
              ? resync(page)
              : undefined;
        if (failed) {
          // Ends the operation as a subscription's errors would (RESYNC_REQUIRED, FORBIDDEN, …).
          sink.next(failed);
          sink.complete();
          stop();
          return;
        }
        if (plan.shape === 'snapshot' || plan.shape === 'snapshot-list') deliverSnapshot(value);
        else variables = { ...variables, [cursorName]: deliverPage(page) };
        const again = page.hasMore === true;
        if (!stopped) timer = quietTimer(() => void round(), again ? 0 : ctx.timing.pollIntervalMs);
      };
      void round();
      return stop;
    },
    execute: (query, variables, operationName) =>
      request(query, variables, operationName).catch((error: unknown) => {
        if (error instanceof ConnectionFailure) lifecycle.end(error);
        throw error;
      }),
    close: () => lifecycle.end(new ConnectionFailure('rotate', 'closed by the client'), false),
  };

  // Open once the server answers a query at all.
  const opening = lifecycle.opening();
  request('{ __typename }', {}).then(
    () => lifecycle.open(session),
    (error: unknown) =>
      lifecycle.end(error instanceof ConnectionFailure ? error : new ConnectionFailure('down', String(error))),
  );
  await opening;
  return session;
}
