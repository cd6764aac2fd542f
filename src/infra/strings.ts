/**
 * Strings that stay in memory for a while: an operation's request id for a subscription's
 * lifetime, the keys and members of the memory stores (fraud windows, rate-limit entries), fraud
 * records.
 *
 * V8 keeps a string built by concatenation (a template literal's pieces, and Node's
 * `randomUUID()`, which joins 20 pieces) as a tree of cons-string nodes until something reads it
 * character by character: a retained UUID cost 490 bytes of heap instead of 65 (measured, Node
 * 20), and the memory stores' keys ~30 cons nodes per voter. At 10,000 voters and as many
 * subscriptions that is ~15 MB more for every major collection to mark during a vote rush.
 * Reading one character makes V8 flatten the string in place, and the tree becomes garbage at once.
 */
import { randomUUID } from 'node:crypto';

/** `s`, flattened (see above): for strings kept as Map keys or stored values. */
export function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

export const newId = (): string => flat(randomUUID());
