/** In-process ReactionStore: the single-instance (no REDIS_URL) implementation. */
import { addEntry, emptyAggregate, type WindowAggregate } from './reactions.rules.js';
import { retainMs, type ReactionStore } from './reactions.store.js';

interface Slot {
  /** Unused once closed (the closer took it). */
  aggregate: WindowAggregate;
  /** Epoch ms at which the window was closed; undefined while open. */
  closedAt?: number;
}

const SPENT: WindowAggregate = emptyAggregate();

export function createMemoryReactionStore(opts: { windowMs: number; now?: () => number }): ReactionStore {
  const now = opts.now ?? Date.now;
  const keep = retainMs(opts.windowMs);
  const slots = new Map<string, Slot>();
  /** Closed windows in the order they were closed, so forgetting them costs O(forgotten). */
  const closedOrder: { key: string; closedAt: number }[] = [];
  let head = 0;
  const keyOf = (sessionId: string, window: number): string => `${sessionId}:${window}`;

  /** Forgets windows closed more than `keep` ago. */
  function sweep(): void {
    const cutoff = now() - keep;
    while (head < closedOrder.length && closedOrder[head]!.closedAt < cutoff) {
      slots.delete(closedOrder[head]!.key);
      head += 1;
    }
    if (head > 1024 && head * 2 > closedOrder.length) {
      closedOrder.splice(0, head);
      head = 0;
    }
  }

  return {
    async add(sessionId, window, entry) {
      const key = keyOf(sessionId, window);
      let slot = slots.get(key);
      if (!slot) {
        slot = { aggregate: emptyAggregate() };
        slots.set(key, slot);
      }
      if (slot.closedAt !== undefined) return false;
      addEntry(slot.aggregate, entry);
      return true;
    },
    async close(sessionId, window) {
      sweep();
      const key = keyOf(sessionId, window);
      const slot = slots.get(key);
      if (slot?.closedAt !== undefined) return null;
      const closedAt = now();
      slots.set(key, { aggregate: SPENT, closedAt });
      closedOrder.push({ key, closedAt });
      return slot?.aggregate ?? emptyAggregate();
    },
  };
}
