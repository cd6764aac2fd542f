/**
 * Paces snapshot publishers by this instance's fan-out.
 *
 * A tally update goes to every watcher: at 10,000 watchers it is ~10,000 socket writes, ~200 ms
 * of the one event loop here. Published every TALLY_FLUSH_MS regardless, updates arrive faster
 * than they can be written during a rush, and either they queue behind one another (the loop
 * spends itself on writes and every vote waits behind them: issue 12's first-seconds stall) or
 * the fan-out drops the older ones (watchers miss published updates). Instead the publisher asks
 * here first: the next update of a snapshot topic waits until the previous fan-out on this
 * instance is written, so standings move as often as this instance can deliver them (several
 * times a second at 10k watchers), every published update reaches every watcher, and the writes
 * leave the loop room for votes.
 *
 * It also tells the fan-out when requests are waiting: the HTTP server reports each request it is
 * answering (streams excepted), and while any is in flight a fan-out writes in short slices so the
 * request's next step (a database reply, its response) is not queued behind thousands of writes;
 * with none, slices are long, which costs less per write.
 *
 * One pacer per process, shared by every shared stream (realtime/shared-subscriptions.ts): the
 * event loop is one resource, so a large fan-out of one competition also slows the next update of
 * another. Each instance paces its own flushes; an update published by another instance is
 * fanned out here as it comes (the stream conflates a backlog older than its lag bound).
 */
export interface FanoutPacer {
  /** A fan-out started on this instance; call the returned function (once) when it is written. */
  started(): () => void;
  /**
   * Resolves once no fan-out is in progress here, or after `maxWaitMs` whatever happens (a
   * publisher never waits longer than that for the loop to be free).
   */
  settled(maxWaitMs: number): Promise<void>;
  /** Fan-outs under way (tests, metrics). */
  inProgress(): number;
  /** An HTTP request (not a stream) is being answered; call the returned function (once) when it is. */
  requestStarted(): () => void;
  /** HTTP requests being answered now. */
  requestsInFlight(): number;
  /** The server accepted a connection (a new client: a voter's phone, a watcher). */
  connectionAccepted(): void;
  /** Whether connections were accepted in the last ARRIVAL_WINDOW_MS: more are likely waiting. */
  arriving(): boolean;
}

/**
 * Node accepts about one pending connection per turn of a busy event loop (measured on Node 20 /
 * libuv 1.46: ~28 per 250 ms with 8 ms turns, ~500 per second with 1 ms turns, every one at once
 * when idle). When a room's phones connect at once, each new voter's connection waits in the
 * kernel's queue for that many turns: 500 new voters behind 8 ms slices waited up to 2.5 s, behind
 * 40 ms slices up to 20 s (issue 12's first-seconds stall). While connections are arriving, a
 * fan-out writes in 1 ms slices so the loop turns, and accepts, as often as it can.
 */
const ARRIVAL_WINDOW_MS = 20;

/** `fn` on the first call only: an end reported twice counts once. */
function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}

export function createFanoutPacer(): FanoutPacer {
  let active = 0;
  let requests = 0;
  let lastArrival = Number.NEGATIVE_INFINITY;
  let waiters: (() => void)[] = [];

  const release = (): void => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };

  return {
    started() {
      active += 1;
      return once(() => {
        active -= 1;
        if (active === 0) release();
      });
    },
    settled(maxWaitMs) {
      if (active === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, maxWaitMs);
        timer.unref();
        function done(): void {
          clearTimeout(timer);
          waiters = waiters.filter((wake) => wake !== done);
          resolve();
        }
        waiters.push(done);
      });
    },
    inProgress: () => active,
    requestStarted() {
      requests += 1;
      return once(() => (requests -= 1));
    },
    requestsInFlight: () => requests,
    connectionAccepted() {
      lastArrival = performance.now();
    },
    arriving: () => performance.now() - lastArrival < ARRIVAL_WINDOW_MS,
  };
}
