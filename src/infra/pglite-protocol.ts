/** The messages between the app's thread (pglite-thread.ts) and the database thread (pglite-worker.ts). */
import type { MessagePort } from 'node:worker_threads';

export interface PGliteWorkerData {
  /** The PGlite data directory (it exists and holds a cluster: pglite-thread.ts creates it first). */
  dir: string;
}

/** App → database thread. `session`: a new client connection on `port`; `close`: flush, close PGlite, end the thread. */
export type WorkerRequest = { type: 'session'; port: MessagePort } | { type: 'close' };

/** Database thread → app, once PGlite is open. */
export type WorkerReply = { type: 'ready' };

/**
 * Database thread → a connection's port, before any protocol bytes: the session is this
 * connection's now (the previous one has ended and was reset). Protocol bytes are Uint8Arrays.
 */
export const GRANTED = 'granted';
