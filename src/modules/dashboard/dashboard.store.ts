/**
 * Who is watching a competition's live tally right now, across every instance. Each instance
 * counts its own subscribers; the store sums them. Memory: this process only. Redis: each
 * instance keeps its count under a key with a TTL that it refreshes, so an instance that dies
 * without cleaning up stops counting once its key expires.
 */
export interface ViewerCounter {
  add(competitionId: string): void;
  remove(competitionId: string): void;
  /** Viewers on every instance. */
  count(competitionId: string): Promise<number>;
  close(): Promise<void>;
}
