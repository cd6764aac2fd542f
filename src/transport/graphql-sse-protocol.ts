/**
 * The GraphQL over SSE protocol (graphql-sse's PROTOCOL.md) on one path, without the library's
 * handler: reservations, single-connection streams and their operations, distinct-connection
 * streams, and resume cursors. It knows no GraphQL server: `prepare` (graphql-sse.ts, through
 * Yoga's pipeline) turns a request into something to run, or refuses it.
 *
 * Requests (the token is `X-GraphQL-Event-Stream-Token`, or `?token=`):
 * - `PUT` (Accept text/plain or any): a reservation; 201 with a new token (unguessable: it is
 *   what lets a request post to, or read, the stream).
 * - `Accept: text/event-stream`, GET or POST: with a token, the reservation's one stream (404
 *   unknown token, 409 already open); without, one operation streamed on its own response
 *   (distinct-connection mode: `event: next` with the result, `id: <seq>`, then `complete`).
 * - `POST` (or GET) with a token and `extensions.operationId`: an operation whose results go out
 *   on the stream as `event: next` `{"id":<operationId>,"payload":<result>}`, then
 *   `event: complete` `{"id":<operationId>}`; 202, or 409 for an id in flight on that stream.
 *   At most `maxOperationsPerStream` in flight: one more gets a RATE_LIMITED result (rule
 *   `subscriptionsPerConnection`) and `complete`, like graphql-ws's per-connection cap.
 * - `DELETE ?operationId=` with a token: stops that operation (nothing more is sent for it); 200.
 * Request errors are JSON `{ errors }` with the catalogue's codes (400, 401, 403, 404, 405, 409,
 * 415), answered before any stream starts. A `:` comment every 12 s keeps streams alive. When a
 * stream's response closes, its reservation and every operation on it end.
 *
 * Tokens. Each operation is authenticated by its own request's `Authorization` (and ends at that
 * token's expiry or revocation, guards/streams.ts). A stream request may carry one too
 * (graphql-sse's client sends its headers on every request): a bad one is refused (401) before the
 * stream starts, and a stream opened with a token does not outlive it: at its `exp`, or when the
 * user's tokens are revoked, every operation still in flight gets a final UNAUTHENTICATED result
 * ("token expired", "account disabled", …) and `complete`, then the response ends (the stream is
 * a connection of the registry, src/realtime/connections.ts, and guardConnections ends it). One
 * stream is one user, as one graphql-ws socket is: the stream token's, else the first operation
 * token's; an operation with another user's token is refused FORBIDDEN (403, or its result when
 * it was queued), as it would otherwise read that user's streams onto this client's.
 *
 * Resume. Each `next` carries an `id:` that a client sends back as `Last-Event-ID` when it
 * reconnects (a browser's EventSource does it by itself):
 * - distinct mode: the event's seq (cursors.ts), exactly as Yoga's SSE on /graphql writes it;
 * - single-connection mode: the stream's cursor map after that event, `<opId>:<seq>,<opId>:<seq>`,
 *   each operation id percent-encoded (encodeURIComponent), one entry per operation whose events
 *   carry a seq, at most `maxOperationsPerStream` entries. A stream request with `Last-Event-ID`
 *   seeds its stream's map: an operation later posted on it with an id found there resumes after
 *   that seq (its context's `lastEventSeq`, like afterSeq). A seeded entry stays in the ids until
 *   its operation's own events replace it, so a second reconnect before those loses nothing.
 *   No entries yet: no `id:` line. An operation that ends leaves the map.
 *
 * One file on purpose: the stream, its operations, the reservation store and the relay are one
 * state machine (a request may start an operation here, queue it, or forward it); split, its
 * invariants (an id freed exactly once, a stream ended exactly once) would span files.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ExecutionResult, GraphQLError } from 'graphql';
import { AppError, badInput, conflict, ErrorCode, forbidden } from '../errors.js';
import type { Viewer } from '../guards/auth.js';
import { tooManyOperations } from '../guards/subscription-limits.js';
import type { Connection, ConnectionRegistry } from '../realtime/connections.js';
import { seqOf } from '../realtime/cursors.js';
import type { DirectSink } from '../realtime/shared-subscriptions.js';
import type {
  GraphqlSseRelay,
  GraphqlSseStore,
  RelayedAnswer,
  RelayedRequest,
  RequestEnvelope,
} from './graphql-sse.store.js';
import { clientJson, COMPLETE, nextEvent, type SseChannel, type SseChannels } from './sse.js';

export const TOKEN_HEADER = 'x-graphql-event-stream-token';
const TOKEN_PARAM = 'token';

export interface GraphQLParams {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
  extensions?: Record<string, unknown> | null;
}

/** What an operation's context gets from the transport. */
export interface OperationExtras {
  directSink: DirectSink;
  /** Backpressure (src/realtime/delivery.ts): bytes written for this client not yet taken. */
  clientBacklog: () => number;
  /** Single-connection mode only: the stream's cursor for this operation id (set even when undefined). */
  lastEventSeq?: number;
  /** Set for a request received by another process, or queued: the client's IP as it was seen then. */
  clientIp?: string;
}

/** A request answered with errors before anything runs; `errors` are already masked. */
export interface Refusal {
  refused: readonly GraphQLError[];
  status: number;
  headers?: Record<string, string>;
}

export interface Prepared {
  /** Whom it runs as: its own request's token's user (null: anonymous). */
  viewer: Viewer | null;
  /** Executes or subscribes; single results come with their errors already in the catalogue's form. */
  run(): Promise<ExecutionResult | AsyncIterable<ExecutionResult>>;
}

export interface GraphqlSseDeps {
  prepare(request: Request, params: GraphQLParams, extras: OperationExtras): Promise<Prepared | Refusal>;
  /**
   * A stream request's own token: null without one, its viewer when it has one; throws an
   * AppError (UNAUTHENTICATED) for a bad, expired or revoked one.
   */
  authenticate(request: Request): Promise<Viewer | null>;
  maskError: (error: unknown, message: string) => Error;
  maxOperationsPerStream: number;
  /** SUBSCRIPTION_CLIENT_BUFFER_BYTES: unsent bytes above which a stream's results wait (delivery.ts). */
  clientBufferBytes: number;
  /** The server's SSE responses (shutdown ends them without `complete`). */
  channels: SseChannels;
  /**
   * Where streams are reported: a single-connection stream from its GET (of its token's user,
   * ended at that token's exp or revocation), a distinct one once its subscription runs.
   */
  connections: ConnectionRegistry;
  /** Reservations and where each stream is held (graphql-sse.store.ts). */
  store: GraphqlSseStore;
  /** Requests for streams other instances hold; absent with one process (the memory store). */
  relay?: GraphqlSseRelay;
  /** This instance, as the store names the holder of a stream. */
  instanceId: string;
  /** The client's IP as this process sees it: carried along with a request run elsewhere or later. */
  clientIp(request: Request): string;
  onError?(message: string, details: Record<string, unknown>): void;
  Response: typeof Response;
  Request: typeof Request;
}

const isRefusal = (value: unknown): value is Refusal =>
  typeof value === 'object' && value !== null && 'refused' in value;

const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  connection: 'keep-alive',
  'cache-control': 'no-cache',
  'content-encoding': 'none',
};
const JSON_TYPE = 'application/json; charset=utf-8';

/** The media types of an Accept header, without parameters; none sent: `*` `/` `*`. */
function acceptedTypes(header: string | null): string[] {
  if (!header) return ['*/*'];
  return header.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
}
const acceptsAny = (types: string[], wanted: string): boolean => {
  const [major] = wanted.split('/');
  return types.some((type) => type === wanted || type === '*/*' || type === `${major}/*`);
};

/**
 * A stream request's `Last-Event-ID` in single-connection mode: the cursor map our ids carry.
 * Absent or empty: none. Anything this server could not have written is BAD_USER_INPUT.
 */
export function parseCursorMap(header: string | null | undefined, maxEntries: number): Map<string, number> {
  const cursors = new Map<string, number>();
  if (header === null || header === undefined || header === '') return cursors;
  const invalid = (): AppError =>
    badInput(
      'Last-Event-ID',
      'Last-Event-ID must be the id of an event this stream sent: <operationId>:<seq>, comma-separated',
    );
  const entries = header.split(',');
  if (entries.length > maxEntries) throw invalid();
  for (const entry of entries) {
    const match = /^([^:]+):(\d{1,10})$/.exec(entry);
    const seq = match ? Number(match[2]) : NaN;
    if (!match || !(seq <= 2_147_483_647)) throw invalid();
    let id: string;
    try {
      id = decodeURIComponent(match[1]!);
    } catch {
      throw invalid();
    }
    if (cursors.has(id)) throw invalid();
    cursors.set(id, seq);
  }
  return cursors;
}

interface Cursor {
  /** The operation id as it appears in `id:` lines. */
  encoded: string;
  seq: number;
}

/** The `id:` value for a cursor map (see the header); '' when it is empty. */
export function formatCursorMap(cursors: Iterable<Cursor>): string {
  let line = '';
  for (const { encoded, seq } of cursors) line += `${line ? ',' : ''}${encoded}:${seq}`;
  return line;
}

interface Operation {
  id: string;
  /** `"<id>"`: the id as a JSON string, for frames. */
  json: string;
  iterator?: AsyncIterator<ExecutionResult>;
  /** Ended (completed, stopped by DELETE, or its stream closed): nothing more is written for it. */
  stopped: boolean;
}

/** A connected stream, in the process that answered its GET (or POST), with all its operations. */
class EventStream {
  readonly operations = new Map<string, Operation>();
  /** Resume cursors by operation id, oldest entry first (seeded ones included). */
  private readonly cursors = new Map<string, Cursor>();
  private readonly channel: SseChannel;
  private closed = false;
  /** The one user whose operations it carries (see "Tokens"). */
  userId: string | undefined;

  constructor(
    private readonly deps: GraphqlSseDeps,
    private readonly onClosed: () => void,
  ) {
    this.channel = deps.channels.open(deps.clientBufferBytes, 'graphql-sse');
    this.channel.body.once('close', () => this.close());
  }

  /** Bytes written to this stream that its client has not taken yet. */
  backlog(): number {
    return this.channel.body.writableLength;
  }

  open(seeds: Map<string, number>, res: ServerResponse | undefined): Response {
    for (const [id, seq] of seeds) this.remember(id, seq);
    this.channel.keepAlive();
    watchClose(res, this.channel);
    return new this.deps.Response(this.channel.body as never, { status: 200, headers: STREAM_HEADERS });
  }

  /** This stream as a connection of `viewer` (its stream request's), ended with the reason its token ends for. */
  connect(viewer: Viewer | null): Connection {
    this.userId = viewer?.id;
    return this.channel.register(this.deps.connections, viewer, (reason) =>
      this.end({ errors: [this.deps.maskError(reason, 'Unexpected error.') as GraphQLError] }),
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A new operation id on this stream; undefined when it is in flight already. */
  add(id: string): Operation | undefined {
    if (this.operations.has(id)) return undefined;
    const operation: Operation = { id, json: JSON.stringify(id), stopped: false };
    this.operations.set(id, operation);
    return operation;
  }

  /** The cursor an operation posted with this id resumes from (a seeded one). */
  cursorOf(id: string): number | undefined {
    return this.cursors.get(id)?.seq;
  }

  /** Where shared results for this operation go: straight onto the stream, framed for it. */
  sinkFor(operation: Operation): DirectSink {
    return {
      write: (result, retry) =>
        operation.stopped ? 'closed' : this.channel.offer(() => this.next(operation, result.json(), result.seq), retry),
    };
  }

  /** Sends what `run()` produced: an iterator's results as they come, or one result. */
  start(operation: Operation, result: ExecutionResult | AsyncIterable<ExecutionResult>): void {
    if (Symbol.asyncIterator in result) {
      operation.iterator = result[Symbol.asyncIterator]();
      void this.pump(operation, operation.iterator);
      return;
    }
    this.channel.write(this.next(operation, Buffer.from(clientJson(result)), seqOf(result)));
    this.finish(operation);
  }

  /** One result and `complete` for an operation that is not let in: over the per-stream cap, or refused when it ran at last (queued). */
  refuse(id: string, result: ExecutionResult): void {
    const operation: Operation = { id, json: JSON.stringify(id), stopped: false };
    this.channel.write(this.next(operation, Buffer.from(clientJson(result)), undefined));
    this.channel.write(completeEvent(operation));
  }

  /** A refused or abandoned operation that never started: its id is free again, a seeded cursor stays. */
  drop(operation: Operation): void {
    operation.stopped = true;
    if (this.operations.get(operation.id) === operation) this.operations.delete(operation.id);
  }

  /** DELETE: the client is done with it; nothing more (not even `complete`) is sent for it. */
  stop(id: string): void {
    const operation = this.operations.get(id);
    if (!operation) return;
    this.operations.delete(id);
    this.cursors.delete(id);
    release(operation);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    for (const operation of this.operations.values()) release(operation);
    this.operations.clear();
    this.channel?.body.destroy();
  }

  /**
   * Ends the stream from the server's side, so that the client reads why: every operation in
   * flight gets `result` and `complete`, then the response ends (after what is buffered, unlike
   * close(), which cuts it).
   */
  end(result: ExecutionResult): void {
    if (this.closed) return;
    const json = Buffer.from(clientJson(result));
    for (const operation of [...this.operations.values()]) {
      this.channel.write(this.next(operation, json, undefined));
      this.finish(operation);
      release(operation);
    }
    this.closed = true;
    this.onClosed();
    this.channel.body.end();
  }

  private async pump(operation: Operation, iterator: AsyncIterator<ExecutionResult>): Promise<void> {
    try {
      for (;;) {
        const step = await iterator.next();
        if (operation.stopped) return;
        if (step.done) break;
        const { value } = step;
        if (value != null) this.channel.write(this.next(operation, Buffer.from(clientJson(value)), seqOf(value)));
      }
    } catch (error) {
      // Stream errors normally arrive as results (streams.ts); anything else ends this operation only.
      if (operation.stopped) return;
      const masked = this.deps.maskError(error, 'Unexpected error.') as GraphQLError;
      this.channel.write(this.next(operation, Buffer.from(clientJson({ errors: [masked] })), undefined));
    }
    this.finish(operation);
  }

  /** The operation ended on the server's side: `complete`, and its cursor leaves the map. */
  private finish(operation: Operation): void {
    if (operation.stopped) return;
    operation.stopped = true;
    if (this.operations.get(operation.id) === operation) this.operations.delete(operation.id);
    this.cursors.delete(operation.id);
    this.channel.write(completeEvent(operation));
  }

  /** Keeps the map within maxOperationsPerStream: an entry for an id not in flight (a seed never re-posted) makes room. */
  private remember(id: string, seq: number): void {
    const known = this.cursors.get(id);
    if (known) {
      known.seq = seq;
      return;
    }
    if (this.cursors.size >= this.deps.maxOperationsPerStream) {
      for (const key of this.cursors.keys()) {
        if (this.operations.has(key)) continue;
        this.cursors.delete(key);
        break;
      }
    }
    this.cursors.set(id, { encoded: encodeURIComponent(id), seq });
  }

  /** `event: next` for one operation, with the stream's cursor map (after this event) as its id. */
  private next(operation: Operation, json: Buffer, seq: number | undefined): Buffer {
    if (seq !== undefined && !operation.stopped) this.remember(operation.id, seq);
    const ids = formatCursorMap(this.cursors.values());
    const head = `event: next\n${ids ? `id: ${ids}\n` : ''}data: {"id":${operation.json},"payload":`;
    const headBytes = Buffer.byteLength(head);
    const frame = Buffer.allocUnsafe(headBytes + json.length + 3);
    frame.write(head, 0, headBytes, 'utf8');
    json.copy(frame, headBytes);
    frame.write('}\n\n', headBytes + json.length, 'latin1');
    return frame;
  }
}

const completeEvent = (operation: Operation): Buffer =>
  Buffer.from(`event: complete\ndata: {"id":${operation.json}}\n\n`);

function release(operation: Operation): void {
  operation.stopped = true;
  void Promise.resolve(operation.iterator?.return?.()).catch(() => undefined);
}

/**
 * @whatwg-node/server destroys a streamed body when the response closes, but only once it pipes
 * it; a client gone before that point must end the stream (and its operations) too.
 */
function watchClose(res: ServerResponse | undefined, channel: SseChannel): void {
  if (!res) return;
  if (res.closed || res.destroyed) channel.body.destroy();
  else res.once('close', () => channel.body.destroy());
}

/** The GraphQL-over-HTTP parameters of a GET (search params) or a JSON POST; an AppError (400) or 415. */
async function readParams(request: Request, url: URL): Promise<GraphQLParams | AppError | 415> {
  let raw: Record<string, unknown>;
  if (request.method === 'GET') {
    const search = url.searchParams;
    raw = { query: search.get('query') ?? undefined, operationName: search.get('operationName') };
    for (const key of ['variables', 'extensions']) {
      const text = search.get(key);
      if (text === null) continue;
      try {
        raw[key] = JSON.parse(text) as unknown;
      } catch {
        return badInput(key, `${key} must be a JSON object`);
      }
    }
  } else {
    if (!request.headers.get('content-type')?.toLowerCase().includes('application/json')) return 415;
    let body: unknown;
    try {
      body = JSON.parse(await request.text());
    } catch {
      return badInput('body', 'the request body must be JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return badInput('body', 'the request body must be a JSON object');
    raw = body as Record<string, unknown>;
  }
  const { query, variables, operationName, extensions } = raw;
  if (typeof query !== 'string')
    return badInput('query', query === undefined ? 'Missing query' : 'query must be a string');
  const isObject = (value: unknown): boolean =>
    value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value));
  if (!isObject(variables)) return badInput('variables', 'variables must be a JSON object');
  if (!isObject(extensions)) return badInput('extensions', 'extensions must be a JSON object');
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string')
    return badInput('operationName', 'operationName must be a string');
  return {
    query,
    variables: variables as GraphQLParams['variables'],
    operationName: operationName,
    extensions: extensions as GraphQLParams['extensions'],
  };
}

/** Hop-by-hop and framing headers: not part of a request rebuilt elsewhere. */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'te',
  'trailer',
]);

/** A shared result has nowhere to go while an operation is only checked (queued, not run). */
const NO_SINK: DirectSink = { write: () => 'closed' };

/**
 * The protocol's request handler. `res` is the Node response (for a client that leaves before the
 * body is piped); the returned Response is complete or streams.
 */
export function createGraphqlSseHandler(
  deps: GraphqlSseDeps,
): (request: Request, url: URL, res: ServerResponse | undefined) => Promise<Response> {
  const { store, relay } = deps;
  /** The streams this process holds, by token. */
  const streams = new Map<string, EventStream>();

  const json = (status: number, errors: readonly GraphQLError[], headers: Record<string, string> = {}): Response => {
    const body = errors.map((error) => {
      const { http: _http, ...extensions } = error.extensions ?? {}; // Yoga's status hint, not for clients
      return { ...error.toJSON(), extensions };
    });
    return new deps.Response(JSON.stringify({ errors: body }), {
      status,
      headers: { 'content-type': JSON_TYPE, ...headers },
    });
  };
  const fail = (status: number, error: AppError, headers?: Record<string, string>): Response =>
    json(status, [deps.maskError(error, error.message) as GraphQLError], headers);
  const refusal = (r: Refusal): Response => json(r.status, r.refused, r.headers);
  const notFound = (): Response =>
    fail(404, new AppError(ErrorCode.NOT_FOUND, 'Stream not found: reserve one first (PUT)'));
  const accepted = (): Response => new deps.Response(null, { status: 202 });
  const methodNotAllowed = (allow: string): Response => fail(405, badInput('method', `${allow} only`), { allow });
  const paramsOf = async (request: Request, url: URL): Promise<{ params: GraphQLParams } | { response: Response }> => {
    const params = await readParams(request, url);
    if (params === 415)
      return { response: fail(415, badInput('content-type', 'send the operation as application/json')) };
    return params instanceof AppError ? { response: fail(400, params) } : { params };
  };
  const operationIdOf = (params: GraphQLParams): string => {
    const raw = params.extensions?.['operationId'];
    // Not a string or number (an object would become '[object Object]'): as if missing.
    return typeof raw === 'string' || typeof raw === 'number' ? String(raw) : '';
  };
  const missingOperationId = (): Response =>
    fail(400, badInput('extensions.operationId', 'Operation ID is missing: send it as extensions.operationId'));
  const anotherUser = (): Refusal => ({
    refused: [
      deps.maskError(
        forbidden('this stream carries another user’s operations; reserve a stream for this token'),
        'Unexpected error.',
      ) as GraphQLError,
    ],
    status: 403,
  });
  const missingDeleteId = (): Response =>
    fail(400, badInput('operationId', 'Operation ID is missing: send ?operationId='));
  const report = (message: string) => (error: unknown) => deps.onError?.(message, { error });

  /** Distinct-connection mode: one operation, its own stream. */
  async function distinct(request: Request, url: URL, res: ServerResponse | undefined): Promise<Response> {
    const read = await paramsOf(request, url);
    if ('response' in read) return read.response;
    const channel = deps.channels.open(deps.clientBufferBytes, 'graphql-sse');
    let answered = false;
    try {
      // The context reads Last-Event-ID (a seq) from the request itself, as on /graphql.
      const prepared = await deps.prepare(request, read.params, {
        directSink: channel.sink,
        clientBacklog: () => channel.body.writableLength,
      });
      if (isRefusal(prepared)) return refusal(prepared);
      const result = await prepared.run();
      answered = true;
      watchClose(res, channel);
      if (Symbol.asyncIterator in result) {
        void channel.pump(result[Symbol.asyncIterator]());
        // Its operation is guarded by its token (guards/streams.ts): the connection has no `end`.
        // Counted (presence has the entry) before the client reads the first event; bounded wait.
        await channel.register(deps.connections, prepared.viewer).ready;
      } else {
        channel.write(nextEvent(Buffer.from(clientJson(result)), seqOf(result)));
        channel.body.end(COMPLETE);
      }
      return new deps.Response(channel.body as never, { status: 200, headers: STREAM_HEADERS });
    } finally {
      // Refused, or failed: the channel never became a response.
      if (!answered) channel.body.destroy();
    }
  }

  /** Prepares and starts an operation taken on `stream`; a refusal frees its id again. */
  async function launch(
    stream: EventStream,
    op: Operation,
    request: Request,
    params: GraphQLParams,
    clientIp: string | undefined,
  ): Promise<Refusal | 'started' | 'stopped'> {
    let started = false;
    try {
      const prepared = await deps.prepare(request, params, {
        directSink: stream.sinkFor(op),
        clientBacklog: () => stream.backlog(),
        lastEventSeq: stream.cursorOf(op.id),
        ...(clientIp !== undefined && { clientIp }),
      });
      if (isRefusal(prepared)) return prepared;
      // Checked and bound in one step after the await: two operations racing to bind cannot both win.
      if (prepared.viewer) {
        stream.userId ??= prepared.viewer.id;
        if (prepared.viewer.id !== stream.userId) return anotherUser();
      }
      // Stopped meanwhile (DELETE, or the stream closed): nothing to run.
      if (op.stopped) return 'stopped';
      const result = await prepared.run();
      if (op.stopped) {
        if (Symbol.asyncIterator in result)
          void Promise.resolve(result[Symbol.asyncIterator]().return?.()).catch(() => undefined);
        return 'stopped';
      }
      stream.start(op, result);
      started = true;
      return 'started';
    } finally {
      if (!started) stream.drop(op);
    }
  }

  /** An operation for a stream this process holds (posted here, or forwarded by another instance with the client's IP). */
  async function operation(request: Request, url: URL, stream: EventStream, clientIp?: string): Promise<Response> {
    const read = await paramsOf(request, url);
    if ('response' in read) return read.response;
    // The stream may have closed while the body was read: its operations would run for nobody.
    if (stream.isClosed) return notFound();
    const id = operationIdOf(read.params);
    if (!id) return missingOperationId();
    if (stream.operations.size >= deps.maxOperationsPerStream && !stream.operations.has(id)) {
      stream.refuse(id, { data: null, errors: [tooManyOperations(deps.maxOperationsPerStream)] });
      return accepted();
    }
    const op = stream.add(id);
    if (!op) return fail(409, conflict('Operation with ID already exists on this stream'));
    const outcome = await launch(stream, op, request, read.params, clientIp);
    if (isRefusal(outcome)) return refusal(outcome);
    return outcome === 'started' ? accepted() : new deps.Response(null, { status: 204 });
  }

  /** Opens a reservation's stream here: its operations (queued ones first) run in this process. */
  async function open(request: Request, token: string, res: ServerResponse | undefined): Promise<Response> {
    if (streams.has(token)) return fail(409, conflict('Stream already open'));
    let seeds: Map<string, number>;
    try {
      seeds = parseCursorMap(request.headers.get('last-event-id'), deps.maxOperationsPerStream);
    } catch (error) {
      if (error instanceof AppError) return fail(400, error);
      throw error;
    }
    // Before the reservation is taken: a refused stream leaves it to a retry with a good token.
    let viewer: Viewer | null;
    try {
      viewer = await deps.authenticate(request);
    } catch (error) {
      if (error instanceof AppError) return fail(401, error);
      throw error;
    }
    // Other instances forward this stream's requests here from the moment the store names us.
    await relay?.ready;
    const connected = await store.connect(token, deps.instanceId);
    if (connected === 'unknown') return notFound();
    if (connected === 'open') return fail(409, conflict('Stream already open'));
    const stream: EventStream = new EventStream(deps, () => {
      if (streams.get(token) === stream) streams.delete(token);
      store.release(token).catch(report('graphql-sse: releasing a stream failed'));
    });
    streams.set(token, stream);
    const response = stream.open(seeds, res);
    const connection = stream.connect(viewer);
    // Operations posted before the stream opened take their ids now (a repeat is a 409), then run
    // in the order they were posted, as if posted now (a refusal is their result, then complete).
    const queued = connected.pending.flatMap((pending) => {
      const op = stream.add(pending.id);
      return op ? [{ op, pending }] : [];
    });
    if (queued.length > 0) {
      void (async () => {
        for (const { op, pending } of queued) {
          const request = requestOf(pending.request);
          const read = await paramsOf(request, new URL(request.url));
          let refused: ExecutionResult | undefined;
          if ('response' in read) refused = (await read.response.json()) as ExecutionResult;
          else {
            const outcome = await launch(stream, op, request, read.params, pending.request.clientIp);
            if (isRefusal(outcome)) refused = { errors: outcome.refused };
          }
          if (refused) {
            stream.drop(op);
            stream.refuse(op.id, refused);
          }
        }
      })().catch(report('graphql-sse: running queued operations failed'));
    }
    // Counted (presence has the entry) before the client reads the first event; bounded wait.
    await connection.ready;
    return response;
  }

  /** What another process needs to run a request here (its body read once, here). */
  async function envelopeOf(request: Request): Promise<RequestEnvelope> {
    const headers: [string, string][] = [];
    request.headers.forEach((value, name) => {
      if (!NOT_FORWARDED.has(name)) headers.push([name, value]);
    });
    const body = request.method === 'GET' || request.method === 'HEAD' ? null : await request.text();
    return { method: request.method, url: request.url, headers, body, clientIp: deps.clientIp(request) };
  }
  const requestOf = (envelope: RequestEnvelope): Request =>
    new deps.Request(envelope.url, { method: envelope.method, headers: envelope.headers, body: envelope.body });

  /** The answer of the instance holding the stream, to a request this process received. */
  async function forward(owner: string, forwarded: RelayedRequest): Promise<Response> {
    // Named by the store but not here: this process's stream just ended.
    if (owner === deps.instanceId || !relay) return notFound();
    const answer = await relay.forward(owner, forwarded);
    if (answer === 'gone') return notFound();
    if (answer === 'timeout')
      return fail(
        503,
        new AppError(ErrorCode.INTERNAL_SERVER_ERROR, 'The server holding this stream did not answer in time: retry'),
      );
    return new deps.Response(answer.body, { status: answer.status, headers: answer.headers });
  }

  /** An operation for a stream this process does not hold: forwarded to its holder, or queued on a reservation not connected yet. */
  async function remoteOperation(request: Request, url: URL, token: string, accept: string[]): Promise<Response> {
    const where = await store.locate(token);
    if (where.state === 'unknown') return notFound();
    if (!acceptsAny(accept, 'application/json')) return new deps.Response(null, { status: 406 });
    const envelope = await envelopeOf(request);
    if (where.state === 'connected') return forward(where.owner, { kind: 'operation', token, request: envelope });
    // Checked now (400/401/403/415 before the 202), run when the stream connects.
    const rebuilt = requestOf(envelope);
    const read = await paramsOf(rebuilt, url);
    if ('response' in read) return read.response;
    const id = operationIdOf(read.params);
    if (!id) return missingOperationId();
    const prepared = await deps.prepare(rebuilt, read.params, {
      directSink: NO_SINK,
      clientBacklog: () => 0,
      clientIp: envelope.clientIp,
    });
    if (isRefusal(prepared)) return refusal(prepared);
    const queued = await store.enqueue(token, { id, request: envelope }, deps.maxOperationsPerStream);
    if (queued === 'queued') return accepted();
    if (queued === 'duplicate') return fail(409, conflict('Operation with ID already exists on this stream'));
    if (queued === 'full') return json(429, [tooManyOperations(deps.maxOperationsPerStream)]);
    return queued.state === 'connected'
      ? forward(queued.owner, { kind: 'operation', token, request: envelope })
      : notFound();
  }

  async function remoteDelete(url: URL, token: string): Promise<Response> {
    const where = await store.locate(token);
    if (where.state === 'unknown') return notFound();
    const id = url.searchParams.get('operationId');
    if (!id) return missingDeleteId();
    const now = where.state === 'reserved' ? await store.dequeue(token, id) : where;
    if (now === 'removed') return new deps.Response(null, { status: 200 });
    return now.state === 'connected' ? forward(now.owner, { kind: 'delete', token, operationId: id }) : notFound();
  }

  /** A request another instance forwarded to this one, for a stream held here. */
  async function answerForwarded(forwarded: RelayedRequest): Promise<RelayedAnswer> {
    const stream = streams.get(forwarded.token);
    let response: Response;
    try {
      if (!stream) response = notFound();
      else if (forwarded.kind === 'delete') {
        stream.stop(forwarded.operationId);
        response = new deps.Response(null, { status: 200 });
      } else {
        const request = requestOf(forwarded.request);
        response = await operation(request, new URL(request.url), stream, forwarded.request.clientIp);
      }
    } catch (error) {
      // What Yoga would answer for a fault in a request taken here: masked, retryable.
      report('graphql-sse: a forwarded request failed')(error);
      response = json(500, [deps.maskError(error, 'Unexpected error.') as GraphQLError]);
    }
    const headers: [string, string][] = [];
    response.headers.forEach((value, name) => headers.push([name, value]));
    return { status: response.status, headers, body: response.body ? await response.text() : null };
  }
  relay?.serve(answerForwarded);

  return async function handle(request, url, res) {
    const token = request.headers.get(TOKEN_HEADER) || url.searchParams.get(TOKEN_PARAM) || undefined;
    const accept = acceptedTypes(request.headers.get('accept'));
    const method = request.method;

    if (accept.includes('text/event-stream')) {
      if (method !== 'GET' && method !== 'POST') return methodNotAllowed('GET, POST');
      return token === undefined ? distinct(request, url, res) : open(request, token, res);
    }

    if (method === 'PUT') {
      if (!acceptsAny(accept, 'text/plain')) return new deps.Response(null, { status: 406 });
      // Always a new token, whatever the request carries: graphql-sse's client sends its previous
      // token along when it reconnects, which the old stream may still hold for a moment.
      const key = randomUUID();
      await store.reserve(key);
      return new deps.Response(key, { status: 201, headers: { 'content-type': 'text/plain; charset=utf-8' } });
    }

    if (method === 'DELETE') {
      if (token === undefined) return notFound();
      const stream = streams.get(token);
      if (!stream) return remoteDelete(url, token);
      const id = url.searchParams.get('operationId');
      if (!id) return missingDeleteId();
      stream.stop(id);
      return new deps.Response(null, { status: 200 });
    }

    if (method !== 'GET' && method !== 'POST') return methodNotAllowed('GET, POST, PUT, DELETE');
    if (token === undefined) return notFound();
    const stream = streams.get(token);
    if (!stream) return remoteOperation(request, url, token, accept);
    if (!acceptsAny(accept, 'application/json')) return new deps.Response(null, { status: 406 });
    return operation(request, url, stream);
  };
}
