/**
 * In-process domain events: how one module reacts to what another committed, on the instance that
 * committed it (the activity feed, notifications). A module emits a fact after its commit; the
 * modules that care subscribe when they are created. Neither knows the other, and app.ts only
 * creates them in order.
 *
 * Not the realtime bus (src/realtime/event-bus.ts): these never leave the process and nobody
 * outside the server sees them. Handlers run synchronously at emit and must not throw (the
 * emitter's commit is done; a failing reaction is logged, never propagated); work they start in
 * the background is theirs to track and settle at shutdown.
 */
import type { CompetitionStatus } from './generated/prisma/enums.js';
import type { MessageView } from './modules/messaging/messaging.events.js';
import type { OfferEvent } from './modules/offers/offers.events.js';
import type { SessionEvent } from './modules/sessions/sessions.events.js';
import type { TallyEvent } from './modules/voting/voting.events.js';

export interface DomainEventMap {
  /** A committed DRAFT → OPEN or OPEN → CLOSED (competitions). */
  'competition.statusChanged': { id: string; title: string; status: CompetitionStatus };
  /** Offer transitions committed together, in commit order (offers, also the expiry sweep). */
  'offers.committed': readonly OfferEvent[];
  /** A message committed; `recipients` are its conversation's participants (messaging). */
  'message.committed': { message: MessageView; recipients: readonly string[] };
  /** A tally update this instance published (voting's tally publisher). */
  'tally.published': TallyEvent;
  /** A session state this instance published (sessions). */
  'session.changed': SessionEvent;
}

export type DomainEventName = keyof DomainEventMap;
export type DomainEventHandler<K extends DomainEventName> = (payload: DomainEventMap[K]) => void;

export interface DomainEvents {
  emit<K extends DomainEventName>(name: K, payload: DomainEventMap[K]): void;
  /** Subscribes for the life of the process (modules subscribe once, when created). */
  on<K extends DomainEventName>(name: K, handler: DomainEventHandler<K>): void;
}

export function createDomainEvents(onError: (error: unknown, name: DomainEventName) => void): DomainEvents {
  const handlers = new Map<DomainEventName, DomainEventHandler<never>[]>();
  return {
    emit(name, payload) {
      for (const handler of handlers.get(name) ?? []) {
        try {
          (handler as DomainEventHandler<typeof name>)(payload);
        } catch (error) {
          onError(error, name);
        }
      }
    },
    on(name, handler) {
      const list = handlers.get(name) ?? [];
      list.push(handler);
      handlers.set(name, list);
    },
  };
}
