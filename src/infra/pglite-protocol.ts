/** The messages between the app's thread (pglite-thread.ts) and the database thread (pglite-worker.ts). */
import type { MessagePort } from 'node:worker_threads';

export interface PGliteWorkerData {
  /** The PGlite data directory (it exists and holds a cluster: pglite-thread.ts creates it first). */
  dir: string;
}

/**
 * App → database thread. `session`: a new client connection on `port`; `answered` (one Int32 in
 * shared memory) is set to 1 and notified each time the thread has posted an answer on that port,
 * so the app's thread may wait for a short one instead of a turn of its event loop. `close`:
 * flush, close PGlite, end the thread.
 */
export type WorkerRequest = { type: 'session'; port: MessagePort; answered: SharedArrayBuffer } | { type: 'close' };

/** Database thread → app, once PGlite is open. */
export interface WorkerReply {
  type: 'ready';
}

/**
 * Database thread → a connection's port, before any protocol bytes: the session is this
 * connection's now (the previous one has ended and was reset). Protocol bytes are Uint8Arrays.
 */
export const GRANTED = 'granted';
