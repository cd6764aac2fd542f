/**
 * The embedded database's thread (started by pglite-thread.ts): PGlite, and a PostgreSQL
 * wire-protocol endpoint on MessagePorts in front of it. Each port is one client connection (pg's
 * `stream`); the bytes a client writes go to PGlite's protocol handler as they are and its answer
 * comes back as bytes, so the app's side is the ordinary `pg` driver and Prisma's adapter-pg.
 *
 * PGlite is one PostgreSQL backend: one session at a time. A second connection waits (it is told
 * "granted" only when the first one has ended) instead of interleaving its messages with another
 * session's extended-query sequence or transaction. When a connection ends, whatever it left
 * behind in the session is undone (an open or failed transaction, prepared statements, session
 * settings, advisory locks) before the next one gets it.
 *
 * Requests from the app's thread (parentPort): `{ type: 'session', port }`, `{ type: 'close' }`.
 * To it: `{ type: 'ready' }` once PGlite is open. Failures are not messages: PGlite failing to
 * open, or failing under a query (its WebAssembly state is then unknown), is thrown out of this
 * thread, which ends it; pglite-thread.ts reports that.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { openPGlite } from './pglite-create.js';
import { GRANTED, type PGliteWorkerData, type WorkerReply, type WorkerRequest } from './pglite-protocol.js';

const SSL_REQUEST_CODE = 80877103;
const CANCEL_REQUEST_CODE = 80877102;
const TERMINATE = 0x58; // 'X'
/** A Sync message: ends an extended-query sequence, including one a client left half-way. */
const SYNC = Uint8Array.of(0x53, 0, 0, 0, 4);

if (!parentPort) throw new Error('pglite-worker.ts runs as a worker thread (see pglite-thread.ts)');
const parent = parentPort;
const { dir } = workerData as PGliteWorkerData;

const db = await openPGlite(dir);

/** One client connection: the bytes received and not yet executed. */
class Session {
  buffered: Uint8Array = new Uint8Array(0);
  /** The startup message has been handled (the first message has no type byte). */
  started = false;
  ended = false;

  constructor(
    readonly port: MessagePort,
    readonly answered: Int32Array,
  ) {}

  receive(chunk: Uint8Array): void {
    if (this.buffered.length === 0) {
      this.buffered = chunk;
      return;
    }
    const joined = new Uint8Array(this.buffered.length + chunk.length);
    joined.set(this.buffered);
    joined.set(chunk, this.buffered.length);
    this.buffered = joined;
  }

  /** Removes and returns the first `length` buffered bytes. */
  take(length: number): Uint8Array {
    const taken = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return taken;
  }
}

let active: Session | undefined;
const waiting: Session[] = [];
let closing = false;

// Everything that touches PGlite runs here, one job after another, so that the session's bytes
// reach it in order and a session reset never overlaps a query.
let jobs: Promise<void> = Promise.resolve();
function serially(job: () => Promise<void>): void {
  jobs = jobs.then(job).catch((error: unknown) => {
    // PGlite threw instead of answering with an ErrorResponse: its state is unknown. End the thread.
    setImmediate(() => {
      throw error;
    });
  });
}

function grant(session: Session): void {
  active = session;
  session.port.postMessage(GRANTED);
  if (session.buffered.length > 0) serially(() => pump(session));
}

/** Executes every complete message buffered for the active session and sends back PGlite's answer. */
async function pump(session: Session): Promise<void> {
  if (session !== active || session.ended || closing) return;
  const out: Uint8Array[] = [];
  const run = (messages: Uint8Array): Promise<void> =>
    db.execProtocolRawStream(messages, { onRawData: (data) => void out.push(data.slice()) }); // data is PGlite's buffer, reused
  // Until the startup message, messages have no type byte: an optional SSLRequest, then the startup
  // (or a CancelRequest on a connection of its own).
  while (!session.started) {
    if (session.buffered.length < 8) return flush(session, out);
    const view = new DataView(session.buffered.buffer, session.buffered.byteOffset, session.buffered.byteLength);
    const length = view.getInt32(0);
    const code = view.getInt32(4);
    if (session.buffered.length < length) return flush(session, out);
    const message = session.take(length);
    if (code === SSL_REQUEST_CODE) {
      out.push(Uint8Array.of(0x4e)); // 'N': no TLS inside the process; the client goes on in clear
    } else if (code === CANCEL_REQUEST_CODE) {
      // A running statement cannot be interrupted here: it runs to its end. Close, as PostgreSQL does.
      session.ended = true;
      session.port.close();
      return;
    } else {
      await run(message); // startup: PGlite answers AuthenticationOk, parameters, ReadyForQuery
      session.started = true;
    }
  }
  let end = 0;
  let terminated = false;
  const buffered = session.buffered;
  const view = new DataView(buffered.buffer, buffered.byteOffset, buffered.byteLength);
  while (end + 5 <= buffered.length) {
    if (buffered[end] === TERMINATE) {
      terminated = true;
      break;
    }
    const next = end + 1 + view.getInt32(end + 1);
    if (next > buffered.length) break;
    end = next;
  }
  // Complete messages go together: PGlite runs them in one pass, as a server reads a socket.
  if (end > 0) await run(session.take(end));
  flush(session, out);
  if (terminated) {
    // PGlite must not see Terminate: in its single backend that would mean "exit".
    session.ended = true;
    session.port.close();
  }
}

/** After a connection ended: nothing it left may leak into the next session. */
async function reset(): Promise<void> {
  await db.execProtocolRaw(SYNC);
  if (db.isInTransaction()) await db.exec('ROLLBACK');
  await db.exec('DISCARD ALL');
}

function ended(session: Session): void {
  session.ended = true;
  const index = waiting.indexOf(session);
  if (index >= 0) {
    waiting.splice(index, 1);
    return;
  }
  if (session !== active) return;
  serially(async () => {
    if (closing) return;
    if (session.started) await reset();
    active = undefined;
    const next = waiting.shift();
    if (next) grant(next);
  });
}

function attach(port: MessagePort, answered: SharedArrayBuffer): void {
  const session = new Session(port, new Int32Array(answered));
  port.on('message', (chunk: Uint8Array) => {
    session.receive(chunk);
    if (session === active) serially(() => pump(session));
  });
  port.once('close', () => ended(session));
  if (closing) port.close();
  else if (active === undefined) grant(session);
  else waiting.push(session);
}

function close(): void {
  closing = true;
  for (const session of [...waiting, ...(active ? [active] : [])]) session.port.close();
  serially(async () => {
    await db.close(); // a checkpoint: everything is in the data directory's files
    process.exit(0); // ends this thread only
  });
}

parent.on('message', (request: WorkerRequest) => {
  switch (request.type) {
    case 'session':
      attach(request.port, request.answered);
      break;
    case 'close':
      close();
      break;
    default:
      throw new Error(`pglite worker: unknown request ${JSON.stringify(request)}`);
  }
});
parent.postMessage({ type: 'ready' } satisfies WorkerReply);

/** Sends PGlite's answer as one message (its chunks are copies: transferred, not copied again). */
function flush(session: Session, out: Uint8Array[]): void {
  if (out.length === 0) return;
  const reply = out.length === 1 ? out[0]! : concat(out);
  session.port.postMessage(reply, [reply.buffer as ArrayBuffer]);
  Atomics.store(session.answered, 0, 1);
  Atomics.notify(session.answered, 0);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}
