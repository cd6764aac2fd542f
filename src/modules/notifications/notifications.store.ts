/**
 * Who is listening: which users have a live `notificationAdded` subscription on some instance.
 * A bulk send (announce) publishes only to them; everybody else reads the rows as their backlog
 * when they subscribe. That is gapless because a subscriber registers (SUBSCRIBE on Redis, or
 * track() in memory) before it reads its backlog, and the sender asks only after its commit:
 * either the sender sees the subscriber and publishes, or the subscriber's backlog read comes
 * after the commit and contains the row.
 */
export interface NotificationAudience {
  /** Registers a live subscription of `userId` on this instance; the returned function releases it. */
  track(userId: string): () => void;
  /** The subset of `userIds` with a live subscription on any instance (may over-report briefly). */
  listening(userIds: readonly string[]): Promise<Set<string>>;
}
