/**
 * Domain events: how one module reacts to what another committed (the activity feed,
 * notifications). A module announces a fact of its commit; the modules that care subscribe when
 * they are created. Neither knows the other, and app.ts only creates them in order.
 *
 * Two kinds, decided per event (DURABLE_EVENTS):
 * - Durable: a reaction writes state users see (a notification, an activity entry), so losing the
 *   event loses that state. The emitter `record`s it in its own transaction (the transactional
 *   outbox, src/outbox.ts) and calls `committed` after the commit; the outbox relay delivers it
 *   right away on this instance, or after a crash by any instance's sweep. Handlers resolve when
 *   their write is done and reject to be retried; a replay must write nothing twice (a key derived
 *   from the event, or `delivery.once`).
 * - Signals: in-process, `emit`ted after the commit, lost with the process. Only for events whose
 *   reactions repair themselves: 'tally.published' feeds vote milestones, which are computed from
 *   the running totals against a cluster-wide high-water mark, so the next tally publish (the
 *   next vote's, or the close's final one) announces a milestone a crash skipped; and tally
 *   publishes are the hot path (one per competition per TALLY_FLUSH_MS), where an outbox write
 *   each would cost more than the self-repairing loss.
 *
 * Not the realtime bus (src/realtime/event-bus.ts): these never leave the server. Handlers are
 * called synchronously at dispatch, in commit order on this instance; a throwing or rejecting
 * handler is reported (onError) and never fails the emitter, whose commit is done.
 */
import type { Prisma } from './generated/prisma/client.js';
import type { CompetitionStatus } from './generated/prisma/enums.js';
import type { MessageView } from './modules/messaging/messaging.events.js';
import type { OfferEvent } from './modules/offers/offers.events.js';
import type { SessionEvent } from './modules/sessions/sessions.events.js';
import type { TallyEvent } from './modules/voting/voting.events.js';
import type { Outbox, OutboxDelivery, OutboxRecord } from './outbox.js';

export interface DomainEventMap {
  /** A committed DRAFT → OPEN or OPEN → CLOSED (competitions). */
  'competition.statusChanged': { id: string; title: string; status: CompetitionStatus };
  /** Offer transitions committed together, in commit order (offers, also the expiry sweep). */
  'offers.committed': readonly OfferEvent[];
  /** A message committed; `recipients` are its conversation's participants but the author (messaging). */
  'message.committed': { message: MessageView; recipients: readonly string[] };
  /** A tally update this instance published (voting's tally publisher). A signal. */
  'tally.published': TallyEvent;
  /** A committed session state (sessions); its publishedAt is empty (set when it is broadcast). */
  'session.changed': SessionEvent;
}

export const DURABLE_EVENTS = [
  'competition.statusChanged',
  'offers.committed',
  'message.committed',
  'session.changed',
] as const satisfies readonly (keyof DomainEventMap)[];

export type DomainEventName = keyof DomainEventMap;
export type DurableEventName = (typeof DURABLE_EVENTS)[number];
export type SignalEventName = Exclude<DomainEventName, DurableEventName>;
export type { OutboxDelivery, OutboxRecord } from './outbox.js';

/** A durable event's handler resolves when its write is done (rejects: retried); a signal's returns nothing. */
export type DomainEventHandler<K extends DomainEventName> = K extends DurableEventName
  ? (payload: DomainEventMap[K], delivery: OutboxDelivery) => Promise<void>
  : (payload: DomainEventMap[K]) => void;

export interface DomainEvents {
  /** A signal, after the commit. */
  emit<K extends SignalEventName>(name: K, payload: DomainEventMap[K]): void;
  /** A durable event, inside the transaction whose commit it announces; pass the result to `committed` after it. */
  record<K extends DurableEventName>(
    tx: Prisma.TransactionClient,
    name: K,
    payload: DomainEventMap[K],
  ): Promise<OutboxRecord>;
  /** After the commit of the transaction that recorded them: delivered now, on this instance. */
  committed(...records: readonly OutboxRecord[]): void;
  /** Subscribes for the life of the process (modules subscribe once, when created). */
  on<K extends DomainEventName>(name: K, handler: DomainEventHandler<K>): void;
}

export interface DomainEventsWithOutbox extends DomainEvents {
  /** The relay: started once every module subscribed, closed on the shutdown stack. */
  readonly outbox: Outbox;
}

/** Runs every handler of `name` (synchronously), resolves when all settled; rejects if any failed. */
export type Dispatch = (name: string, payload: unknown, delivery: OutboxDelivery) => Promise<void>;

export function createDomainEvents(
  onError: (error: unknown, name: DomainEventName) => void,
  createOutbox: (dispatch: Dispatch) => Outbox,
): DomainEventsWithOutbox {
  const handlers = new Map<DomainEventName, ((payload: unknown, delivery?: OutboxDelivery) => unknown)[]>();
  const durable = new Set<string>(DURABLE_EVENTS);

  const dispatch: Dispatch = async (name, payload, delivery) => {
    if (!durable.has(name)) throw new Error(`outbox: unknown durable event ${name}`);
    const runs = (handlers.get(name as DomainEventName) ?? []).map((handler) => {
      try {
        return Promise.resolve(handler(payload, delivery));
      } catch (error) {
        return Promise.reject(error);
      }
    });
    const failed = (await Promise.allSettled(runs)).filter((r) => r.status === 'rejected');
    for (const failure of failed) onError(failure.reason, name as DomainEventName);
    if (failed.length > 0) throw new Error(`${failed.length} handler(s) of ${name} failed`);
  };
  const outbox = createOutbox(dispatch);

  return {
    outbox,
    emit(name, payload) {
      for (const handler of handlers.get(name) ?? []) {
        try {
          handler(payload);
        } catch (error) {
          onError(error, name);
        }
      }
    },
    record: (tx, name, payload) => outbox.record(tx, name, payload),
    committed: (...records) => outbox.committed(records),
    on(name, handler) {
      const list = handlers.get(name) ?? [];
      list.push(handler as (payload: unknown, delivery?: OutboxDelivery) => unknown);
      handlers.set(name, list);
    },
  };
}
