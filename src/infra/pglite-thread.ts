/**
 * The embedded database off the serving thread. PGlite (PostgreSQL compiled to WebAssembly) runs
 * its queries synchronously on whatever thread holds it; in the app's thread, a 100 ms query was
 * 100 ms in which no request was read and no subscriber written to. Here it runs in a worker
 * thread (pglite-worker.ts), and the app reaches it the way it reaches any PostgreSQL: node-postgres
 * speaking the wire protocol, over a MessagePort instead of a socket (`connect()` is pg's `stream`).
 *
 * No socket, no port, no file: a MessagePort exists only inside this process, so nothing else on
 * the host can connect to the database, whatever the permissions, the path length of DATA_DIR or
 * the file system it is on.
 *
 * A data directory without a cluster is created first in a child process (pglite-create.ts): PGlite's
 * initdb keeps ~550 MB resident in whatever process runs it. It is created beside the target and
 * renamed into place when complete, so an interrupted first start leaves no half-made cluster.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { StartupError } from '../config.js';
import { GRANTED, type PGliteWorkerData, type WorkerReply, type WorkerRequest } from './pglite-protocol.js';

export interface PGliteThread {
  /**
   * A new client connection, for node-postgres' `stream` option (a plain function: pass it as it
   * is). It connects once the session is its own: PGlite has one, so a second connection waits
   * until the first one has ended.
   */
  readonly connect: () => Duplex;
  /** Closes PGlite (which writes a checkpoint) and ends the thread. Safe to call twice. */
  close(): Promise<void>;
  /** The thread itself; for tests that need to end it the hard way. */
  readonly worker: Worker;
}

export interface StartPGliteThreadOptions {
  /** The PGlite data directory; a new cluster is created there when it has none. */
  dir: string;
  /** The thread ended without close() (PGlite failed under a query, or the thread died). Called once. */
  onCrash: (error: Error) => void;
  log?: (msg: string) => void;
}

/**
 * How long the app's thread waits, blocked, for the answer to a statement before it lets its event
 * loop deliver the answer whenever it comes. Answered in time (nearly every statement), a statement
 * costs what it cost with PGlite in this thread, and a transaction's statements follow one another
 * within one turn of the loop; each answer left to the loop waits for the turn in progress, which
 * under a fan-out to thousands of sockets is tens to hundreds of milliseconds, and PGlite's one
 * session stays held meanwhile. Longer statements (a big recount, a migration) no longer stall the
 * loop beyond this.
 */
const ANSWER_WAIT_MS = 5;

/** close() ends the thread itself when PGlite's own close has not finished by then. */
const CLOSE_TIMEOUT_MS = 20_000;
const CREATING = '.creating-';

/** `npm start` and the tests run the TypeScript sources (through tsx), production runs dist/*.js. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const sibling = (name: string): URL => new URL(`./${name}${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

export async function startPGliteThread({
  dir,
  onCrash,
  log = () => undefined,
}: StartPGliteThreadOptions): Promise<PGliteThread> {
  await ensureCluster(dir, log);
  const worker = startWorker({ dir });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (reply: WorkerReply) =>
        reply.type === 'ready' ? resolve() : reject(new Error(`unexpected ${JSON.stringify(reply)}`)),
      );
      worker.once('error', reject);
      void exited.then((code) =>
        reject(new Error(`the embedded database's thread exited with code ${code} while opening ${dir}`)),
      );
    });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  // Once open, the thread alone does not keep the process alive (as PGlite in this thread did not):
  // a query in flight does, through its connection's port; so do the server's sockets.
  worker.unref();

  let state: 'open' | 'closing' | 'ended' = 'open';
  const crashed = (error: Error): void => {
    if (state !== 'open') return;
    state = 'ended';
    onCrash(error);
  };
  worker.on('error', (error) => crashed(error));
  void exited.then((code) => crashed(new Error(`its thread exited with code ${code}`)));

  let closing: Promise<void> | undefined;
  return {
    worker,
    connect: () =>
      new SessionStream((port, answered) => {
        if (state !== 'open') return false;
        worker.postMessage({ type: 'session', port, answered } satisfies WorkerRequest, [port]);
        return true;
      }),
    close() {
      closing ??= (async () => {
        if (state !== 'open') return; // crashed: reported already, nothing left to close
        state = 'closing';
        worker.ref();
        const failure = new Promise<never>((_, reject) => worker.once('error', reject));
        const timer = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS);
        worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        const code = await Promise.race([exited, failure]).finally(() => clearTimeout(timer));
        state = 'ended';
        if (code !== 0)
          throw new Error(`the embedded database did not close cleanly: its thread exited with code ${code}`);
      })();
      return closing;
    },
  };
}

function startWorker(data: PGliteWorkerData): Worker {
  const entry = sibling('pglite-worker');
  if (!FROM_SOURCE) return new Worker(entry, { workerData: data });
  // Node runs no TypeScript in a worker and does not pass tsx's --import hooks on to one: the
  // thread registers tsx before it loads the entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`,
    {
      eval: true,
      workerData: data,
    },
  );
}

/** Creates a cluster in `dir` unless it has one. The caller holds the data directory's lock. */
async function ensureCluster(dir: string, log: (msg: string) => void): Promise<void> {
  if (await exists(path.join(dir, 'PG_VERSION'))) return;
  // What an earlier, interrupted creation left behind (only this process may write here now).
  const parent = path.dirname(dir);
  const leftovers = (await readdir(parent).catch(() => [])).filter((name) =>
    name.startsWith(path.basename(dir) + CREATING),
  );
  await Promise.all(leftovers.map((name) => rm(path.join(parent, name), { recursive: true, force: true })));
  if (await exists(dir)) {
    // An empty directory is what a first start that stopped before creating anything leaves.
    await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOTEMPTY' || error.code === 'EEXIST'
        ? new StartupError(
            'DATA_DIR',
            `${dir} is not empty but holds no database (no PG_VERSION): move it aside, or set DATA_DIR to another directory`,
          )
        : error;
    });
  }
  const started = Date.now();
  const creating = `${dir}${CREATING}${randomBytes(4).toString('hex')}`;
  try {
    await runCreate(creating);
    await rename(creating, dir);
  } catch (error) {
    await rm(creating, { recursive: true, force: true });
    throw error;
  }
  log(`database: created the embedded database in ${dir} (${Date.now() - started} ms)`);
}

function runCreate(dir: string): Promise<void> {
  const args = [
    ...(FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : []),
    fileURLToPath(sibling('pglite-create')),
    dir,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `creating the embedded database in ${dir} failed (${signal ?? `exit code ${code}`}): ${stderr.trim()}`,
            ),
          ),
    );
  });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

/**
 * One client connection as node-postgres sees a socket. Writes made in one tick (pg writes Parse,
 * Bind, Describe, Execute and Sync one by one) leave as one message, so the database thread gets
 * them as one batch, as a server reads them from a socket.
 */
class SessionStream extends Duplex {
  #port: MessagePort | undefined;
  #outgoing: Buffer[] = [];
  readonly #answered = new Int32Array(new SharedArrayBuffer(4));

  /** `open` hands the other end of the channel to the database thread, or returns false when it is gone. */
  constructor(private readonly open: (port: MessagePort, answered: SharedArrayBuffer) => boolean) {
    super({ allowHalfOpen: false });
  }

  connect(): this {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    port1.on('message', (message: Uint8Array | typeof GRANTED) => this.#receive(message));
    // The database thread closed the session (Terminate answered, the database closing) or ended.
    port1.once('close', () => this.push(null));
    if (!this.open(port2, this.#answered.buffer)) {
      port1.close();
      process.nextTick(() => this.destroy(new Error('the embedded database is not running')));
    }
    return this;
  }

  // Socket methods node-postgres calls; nothing to tune on a MessagePort.
  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    this.#port?.ref();
    return this;
  }

  unref(): this {
    this.#port?.unref();
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#outgoing.push(chunk) === 1) queueMicrotask(() => this.#send(true));
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#send(false);
    this.#port?.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#port?.close();
    callback(error);
  }

  #receive(message: Uint8Array | typeof GRANTED): void {
    if (message === GRANTED) this.emit('connect');
    else this.push(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
  }

  #send(wait: boolean): void {
    const port = this.#port;
    if (this.#outgoing.length === 0 || port === undefined) return;
    // A fresh buffer, transferred: pg's buffers are often slices of a shared pool, and cloning a
    // slice would copy the whole pool.
    const message = new Uint8Array(this.#outgoing.reduce((sum, chunk) => sum + chunk.length, 0));
    let offset = 0;
    for (const chunk of this.#outgoing) {
      message.set(chunk, offset);
      offset += chunk.length;
    }
    this.#outgoing = [];
    wait &&= awaitsAnswer(message); // before the transfer detaches it
    Atomics.store(this.#answered, 0, 0);
    port.postMessage(message, [message.buffer]);
    if (!wait) return;
    // Blocks this thread for ANSWER_WAIT_MS at most, then takes what has been answered out of the
    // port's queue in order (what the loop already delivered is no longer there).
    if (Atomics.wait(this.#answered, 0, 0, ANSWER_WAIT_MS) === 'timed-out') return;
    for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) {
      this.#receive(next.message as Uint8Array | typeof GRANTED);
    }
  }
}

/**
 * Whether the server answers these client messages now: they include a Sync or a simple Query
 * (an extended-query sequence is answered at its Sync). The startup message, which has no type
 * byte, is answered too; pg sends it alone.
 */
function awaitsAnswer(messages: Uint8Array): boolean {
  const view = new DataView(messages.buffer, messages.byteOffset, messages.byteLength);
  if (messages[0] === 0) return true; // startup: its length comes first, and it is below 16 MB
  for (let at = 0; at + 5 <= messages.length; at += 1 + view.getInt32(at + 1)) {
    if (messages[at] === SYNC || messages[at] === QUERY) return true;
  }
  return false;
}

const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
