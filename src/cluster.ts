/**
 * WORKERS > 1: this process becomes a node:cluster primary that forks that many workers, each a
 * whole server (createApp) and an instance of its own among those sharing PostgreSQL and Redis,
 * all accepting on one PORT. The primary serves nothing: it checks PORT once, creates the dev
 * JWT secret before the workers race for it, replaces a worker that dies (with backoff), passes
 * SIGTERM/SIGINT on for a graceful stop, and gives up in one line when workers keep dying before
 * they serve.
 *
 * Connections are handed to the workers round-robin by the primary (Node's default on Linux), one
 * connection to one worker: HTTP keep-alive requests, a graphql-ws socket and an SSE stream stay
 * on the worker that accepted them. graphql-sse's single-connection mode spreads one client's
 * requests over several connections and needs more (README "Several workers on one host").
 *
 * GET /metrics reaches one worker too: it asks the primary, which collects every serving worker's
 * series over IPC and merges them (src/modules/ops/ops.metrics.aggregator.ts), so a scrape sees the host.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config.js';
import { resolveJwtSecret } from './guards/auth.js';
import type { Logger } from './infra/logger.js';
import { assertPortFree } from './infra/port.js';
import {
  mergeWorkerMetrics,
  type MetricsSnapshot,
  type WorkerMetricsLink,
  type WorkerSnapshot,
} from './modules/ops/ops.metrics.aggregator.js';

/** What a worker tells its primary. */
export type WorkerMessage =
  | { ovation: 'ready'; url: string; instanceId: string }
  /** A failure the operator fixes through a variable: the primary prints it and stops. */
  | { ovation: 'startup-error'; message: string }
  /** /metrics was scraped on this worker: the primary answers with every worker's series merged. */
  | { ovation: 'metrics-scrape'; id: number }
  /** This worker's series, for the primary's collection `id`. */
  | { ovation: 'metrics-snapshot'; id: number; metrics?: MetricsSnapshot; error?: string };

/** What a primary tells a worker. */
export type PrimaryMessage =
  | { ovation: 'metrics-collect'; id: number }
  | { ovation: 'metrics-scraped'; id: number; body?: string; error?: string };

function isOvationMessage<T>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { ovation?: unknown }).ovation === 'string';
}

/** How long the primary waits for every worker's series; Prometheus's own scrape timeout is 10 s. */
const METRICS_COLLECT_TIMEOUT_MS = 3_000;
/** The worker's bound on the primary's answer: the collection's, and a margin. */
const METRICS_SCRAPE_TIMEOUT_MS = METRICS_COLLECT_TIMEOUT_MS + 1_000;

/**
 * Worker side of GET /metrics (ops.metrics.aggregator.ts): `scrape` asks the primary; `answer` sends this
 * worker's series when the primary collects them (the scraped worker's own included).
 */
export function workerMetricsLink(): WorkerMetricsLink {
  let next = 0;
  const pending = new Map<number, { resolve(body: string): void; reject(error: Error): void }>();
  const send = (message: WorkerMessage): void => {
    if (process.send && process.connected) process.send(message);
  };
  return {
    scrape() {
      if (!process.send || !process.connected) return Promise.reject(new Error('no primary to collect the workers'));
      const id = next++;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`the primary did not answer within ${METRICS_SCRAPE_TIMEOUT_MS} ms`));
        }, METRICS_SCRAPE_TIMEOUT_MS);
        pending.set(id, {
          resolve: (body) => (clearTimeout(timer), resolve(body)),
          reject: (error) => (clearTimeout(timer), reject(error)),
        });
        send({ ovation: 'metrics-scrape', id });
      });
    },
    answer(snapshot) {
      const onMessage = (message: unknown): void => {
        if (!isOvationMessage<PrimaryMessage>(message)) return;
        if (message.ovation === 'metrics-collect') {
          const { id } = message;
          snapshot().then(
            (metrics) => send({ ovation: 'metrics-snapshot', id, metrics }),
            (error: unknown) => send({ ovation: 'metrics-snapshot', id, error: String(error) }),
          );
        } else if (message.ovation === 'metrics-scraped') {
          const request = pending.get(message.id);
          pending.delete(message.id);
          if (message.body !== undefined) request?.resolve(message.body);
          else request?.reject(new Error(message.error ?? 'no metrics'));
        }
      };
      process.on('message', onMessage);
      return () => {
        process.off('message', onMessage);
        for (const request of pending.values()) request.reject(new Error('stopping'));
        pending.clear();
      };
    },
  };
}

/** Worker side: tells the primary, if there is one. Resolves once the message is sent (or at once). */
export function tellPrimary(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!cluster.isWorker || !process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/** `base` with `fields` added to every entry (a worker's pid, so that N workers' lines can be told apart). */
export function withFields(base: Logger, fields: Record<string, unknown>): Logger {
  // Yoga logs an Error (or another value) where fields go: it stays whole, as `detail`.
  const merge = (extra: unknown): Record<string, unknown> =>
    extra === undefined
      ? fields
      : typeof extra === 'object' && extra !== null && !(extra instanceof Error)
        ? { ...extra, ...fields }
        : { detail: extra, ...fields };
  const add =
    (log: Logger['info']): Logger['info'] =>
    (message, extra) =>
      log(message, merge(extra));
  return {
    debug: add(base.debug),
    info: add(base.info),
    warn: add(base.warn),
    error: add(base.error),
    child: (extra) => withFields(base.child(extra), fields),
  };
}

/** Workers that exit before serving, one after another, before the primary gives up. */
export const START_FAILURES_BEFORE_GIVING_UP = 3;
/** Restart delay of a worker that died: doubles with each death of its slot within a minute. */
const RESTART_DELAY_MS = { first: 250, max: 15_000, window: 60_000 };
/** The primary's own margin beyond the workers' hard exit before it kills them. */
const PRIMARY_MARGIN_MS = 3_000;

export function restartDelayMs(recentDeaths: number): number {
  return Math.min(RESTART_DELAY_MS.max, RESTART_DELAY_MS.first * 2 ** Math.max(0, recentDeaths - 1));
}

function describeExit(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  ready: boolean;
  instanceId: string | undefined;
  /** Exit times of this slot's workers within the backoff window. */
  deaths: number[];
  restart: NodeJS.Timeout | undefined;
}

export interface PrimaryOptions {
  config: Config;
  logger: Logger;
  /** A worker's hard exit after SIGTERM (main.ts): the primary waits this plus a margin. */
  workerHardExitMs: number;
  /** Once, when every worker first listens: the banner. */
  onReady(url: string): void;
}

/** Runs the primary until the workers have stopped; exits the process itself. */
export async function runPrimary(opts: PrimaryOptions): Promise<void> {
  const { config, logger } = opts;
  await assertPortFree(config.port, config.host);
  // Without JWT_SECRET, the first start writes a dev secret under DATA_DIR: here once, so that the
  // workers all read the same file rather than racing to write it.
  if (config.jwtSecret === undefined) await resolveJwtSecret(config);

  const slots: Slot[] = Array.from({ length: config.workers }, (_, index) => ({
    index: index + 1,
    worker: undefined,
    ready: false,
    instanceId: undefined,
    deaths: [],
    restart: undefined,
  }));
  let announced = false;
  let startFailures = 0;
  let stopping: { reason: 'signal' | 'fatal'; message?: string } | undefined;
  let unclean = false;
  let signals = 0;

  const live = (): Slot[] => slots.filter((slot) => slot.worker !== undefined);

  // GET /metrics on any worker: each serving worker's series, merged. A worker that exits during
  // a collection drops out of it; one that does not answer in time fails the scrape.
  interface Collection {
    waiting: Set<number>;
    received: WorkerSnapshot[];
    finish(error?: Error): void;
  }
  const collections = new Map<number, Collection>();
  let nextCollection = 0;
  function collectMetrics(): Promise<string> {
    const id = nextCollection++;
    const serving = slots.filter((slot) => slot.ready && slot.worker?.isConnected());
    return new Promise((resolve, reject) => {
      const collection: Collection = {
        waiting: new Set(serving.map((slot) => slot.index)),
        received: [],
        finish(error) {
          clearTimeout(timer);
          collections.delete(id);
          if (error) reject(error);
          else mergeWorkerMetrics(collection.received.sort((a, b) => a.worker - b.worker)).then(resolve, reject);
        },
      };
      const timer = setTimeout(
        () =>
          collection.finish(
            new Error(
              `worker ${[...collection.waiting].join(', ')} sent no metrics within ${METRICS_COLLECT_TIMEOUT_MS} ms`,
            ),
          ),
        METRICS_COLLECT_TIMEOUT_MS,
      );
      collections.set(id, collection);
      for (const slot of serving) slot.worker!.send({ ovation: 'metrics-collect', id } satisfies PrimaryMessage);
      if (serving.length === 0) collection.finish();
    });
  }
  function received(slot: Slot, id: number, metrics: MetricsSnapshot | undefined, error: string | undefined): void {
    const collection = collections.get(id);
    if (!collection?.waiting.delete(slot.index)) return;
    if (metrics === undefined) return collection.finish(new Error(`worker ${slot.index}: ${error ?? 'no metrics'}`));
    collection.received.push({ worker: slot.index, metrics });
    if (collection.waiting.size === 0) collection.finish();
  }
  function leftCollections(slot: Slot): void {
    for (const collection of collections.values())
      if (collection.waiting.delete(slot.index) && collection.waiting.size === 0) collection.finish();
  }

  function finishIfDone(): void {
    if (!stopping || live().length > 0) return;
    if (stopping.message) process.stderr.write(`${stopping.message}\n`);
    else logger.info('all workers stopped');
    process.exit(stopping.reason === 'fatal' || unclean ? 1 : 0);
  }

  function stopAll(reason: 'signal' | 'fatal', message?: string): void {
    if (stopping) return;
    stopping = { reason, ...(message === undefined ? {} : { message }) };
    for (const slot of slots) clearTimeout(slot.restart);
    for (const slot of live()) slot.worker?.process.kill('SIGTERM');
    setTimeout(() => {
      for (const slot of live()) {
        logger.error(`worker ${slot.index} (pid ${slot.worker?.process.pid}) did not stop in time; killing it`);
        slot.worker?.process.kill('SIGKILL');
      }
      unclean = true;
    }, opts.workerHardExitMs + PRIMARY_MARGIN_MS).unref();
    finishIfDone();
  }

  function fork(slot: Slot): void {
    slot.restart = undefined;
    slot.ready = false;
    slot.instanceId = undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    worker.on('message', (message: unknown) => {
      if (!isOvationMessage<WorkerMessage>(message)) return;
      if (message.ovation === 'startup-error') {
        stopAll('fatal', message.message);
        return;
      }
      if (message.ovation === 'metrics-scrape') {
        const { id } = message;
        const reply = (answer: PrimaryMessage): void => {
          if (worker.isConnected()) worker.send(answer);
        };
        collectMetrics().then(
          (body) => reply({ ovation: 'metrics-scraped', id, body }),
          (error: unknown) =>
            reply({ ovation: 'metrics-scraped', id, error: error instanceof Error ? error.message : String(error) }),
        );
        return;
      }
      if (message.ovation === 'metrics-snapshot') {
        received(slot, message.id, message.metrics, message.error);
        return;
      }
      slot.ready = true;
      slot.instanceId = message.instanceId;
      startFailures = 0;
      logger.info(`worker ${slot.index} ready`, { pid: worker.process.pid, instance: message.instanceId });
      if (!announced && slots.every((s) => s.ready)) {
        announced = true;
        logger.info(`Ovation ready: ${slots.length} workers on one port, database PostgreSQL, pubsub Redis`);
        opts.onReady(message.url);
      }
    });
    worker.on('exit', (code, signal) => {
      const wasReady = slot.ready;
      slot.worker = undefined;
      slot.ready = false;
      leftCollections(slot);
      if (stopping) {
        // A worker that never served had nothing to drain: still starting (SIGTERM ends it before
        // it has a handler), or the one whose start-up error stopped everything.
        const clean = code === 0 || !wasReady;
        if (!clean) {
          unclean = true;
          logger.error(
            `worker ${slot.index} (pid ${worker.process.pid}) exited with ${describeExit(code, signal)} while stopping`,
          );
        }
        finishIfDone();
        return;
      }
      if (!wasReady && (startFailures += 1) >= START_FAILURES_BEFORE_GIVING_UP) {
        stopAll(
          'fatal',
          `Ovation: ${startFailures} workers in a row exited before serving (the last with ${describeExit(code, signal)}; its output is above): giving up`,
        );
        return;
      }
      const now = Date.now();
      slot.deaths = [...slot.deaths.filter((t) => now - t < RESTART_DELAY_MS.window), now];
      const delay = restartDelayMs(slot.deaths.length);
      logger.error(
        `worker ${slot.index} (pid ${worker.process.pid}) exited with ${describeExit(code, signal)}; starting another in ${delay} ms`,
        {
          ...(slot.instanceId ? { instance: slot.instanceId } : {}),
          servedBefore: wasReady,
        },
      );
      slot.restart = setTimeout(() => fork(slot), delay);
    });
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      // A second Ctrl-C means now.
      for (const slot of live()) slot.worker?.process.kill('SIGKILL');
      process.exit(1);
    }
    logger.info(`${signal} received: stopping ${live().length} workers`);
    stopAll('signal');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // Structured clone rather than JSON over IPC: metric values may be NaN (an event-loop lag
  // before its first sample), which JSON would turn into null.
  cluster.setupPrimary({ serialization: 'advanced' });
  for (const slot of slots) fork(slot);
}
