/**
 * Yoga's distinct-connection SSE (`Accept: text/event-stream` on /graphql), with the same wire
 * format as Yoga's own processor (a `:` comment first, `event: next` per result, `event: complete`
 * at the end, a `:` ping every 12 s), written through a Node stream instead of a web
 * ReadableStream.
 *
 * Why not Yoga's processor: it serialises and UTF-8-encodes every result once per subscriber and
 * pushes two chunks per event through a ReadableStream controller and several promise layers. At
 * 10,000 tally watchers that was 15k events/s at 127% CPU with GC at 27%, against 39k at 50% for
 * graphql-ws. Here a stream's context carries a direct sink (shared-subscriptions.ts): a shared
 * result becomes one `event: next` Buffer that every SSE subscriber's response is handed as is.
 * Results that are not shared, or carry errors, still come through the iterator, in order.
 */
import type { ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { ExecutionResult, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Context } from '../context.js';
import type { AppError } from '../errors.js';
import type { Viewer } from '../guards/auth.js';
import type { Connection, ConnectionRegistry } from '../realtime/connections.js';
import { seqOf } from '../realtime/cursors.js';
import type { DirectSink, DirectSinkContext } from '../realtime/shared-subscriptions.js';

const PING_INTERVAL_MS = 12_000;

const HEADERS = {
  'Content-Type': 'text/event-stream',
  Connection: 'keep-alive',
  'Cache-Control': 'no-cache',
  'Content-Encoding': 'none',
};

const COMMENT = Buffer.from(':\n\n');
export const COMPLETE = Buffer.from('event: complete\ndata:\n\n');
const NEXT_PREFIX = Buffer.from('event: next\ndata: ');
const EVENT_END = Buffer.from('\n\n');

/**
 * One `event: next` message around a result's JSON (JSON never contains a raw newline), with the
 * event's seq as its `id:` when it has one: a browser's EventSource sends it back as
 * `Last-Event-ID` when it reconnects, and the operation resumes after it (cursors.ts).
 */
export const nextEvent = (json: Buffer, seq: number | undefined): Buffer =>
  seq === undefined
    ? Buffer.concat([NEXT_PREFIX, json, EVENT_END])
    : Buffer.concat([Buffer.from(`event: next\nid: ${seq}\ndata: `), json, EVENT_END]);

/** What Yoga's stringifier does: internal extensions (`http`, `unexpected`) never reach clients. */
export function clientJson(result: ExecutionResult): string {
  const custom = (result as { stringify?: (r: ExecutionResult) => string }).stringify;
  if (!result.errors?.length && !result.extensions?.['http']) return custom ? custom(result) : JSON.stringify(result);
  const { http: _http, ...extensions } = result.extensions ?? {};
  const errors = result.errors?.map((error: GraphQLError) => {
    const json = typeof error.toJSON === 'function' ? error.toJSON() : (error as object);
    const { http: _h, unexpected: _u, ...ext } = (json as { extensions?: Record<string, unknown> }).extensions ?? {};
    return { ...json, extensions: Object.keys(ext).length > 0 ? ext : undefined };
  });
  return JSON.stringify({ ...result, errors, extensions: Object.keys(extensions).length > 0 ? extensions : undefined });
}

/**
 * One SSE response: its body (a Node stream, piped into the response as is), and the sink that
 * shared streams write to. Also graphql-sse's (graphql-sse.ts), whose single-connection streams
 * carry many operations over one channel.
 */
/**
 * The SSE responses of one server, so that shutdown can end them without `complete`: a client
 * (an EventSource, the client kit) takes a response that just ends as a dropped connection and
 * reconnects with its cursor to another instance; `complete` would tell it the stream is over
 * (graphql-ws gets 1001 Going Away for the same reason).
 */
export type SseTransport = 'sse' | 'graphql-sse';

export class SseChannels {
  private readonly live = new Set<SseChannel>();

  /**
   * `transport`: Yoga's distinct-connection SSE on /graphql, or graphql-sse on /graphql/stream.
   * A channel that becomes a stream is reported to the connection registry by its transport
   * (`register`); one that does not (a query, a refused request) must be destroyed by its opener.
   */
  open(maxBufferedBytes: number, transport: SseTransport): SseChannel {
    const channel = new SseChannel(maxBufferedBytes, transport);
    this.live.add(channel);
    channel.body.once('close', () => this.live.delete(channel));
    return channel;
  }

  /** Ends every open response abruptly (no `complete`): shutdown. */
  abortAll(): void {
    for (const channel of [...this.live]) channel.body.destroy();
  }

  size(): number {
    return this.live.size;
  }
}

export class SseChannel {
  readonly body = new PassThrough();
  private closed = false;
  /** Direct writers waiting for the client to catch up: one 'drain' listener for all of them. */
  private readonly drainWaiters = new Set<() => void>();

  /** @param maxBufferedBytes unsent bytes above which a direct write waits for the client (delivery.ts). */
  constructor(
    private readonly maxBufferedBytes: number,
    readonly transport: SseTransport = 'sse',
  ) {
    this.body.write(COMMENT); // some browsers wait for a first byte before they report the response
    this.body.once('close', () => {
      this.closed = true;
      this.drainWaiters.clear();
    });
  }

  get isClosed(): boolean {
    return this.closed || this.body.writableEnded;
  }

  /**
   * A direct write: the frame is built (and sent) only if the client keeps up; 'busy': `retry`
   * runs once it drained its backlog.
   */
  offer(frame: () => Buffer, retry: () => void): 'sent' | 'busy' | 'closed' {
    if (this.isClosed) return 'closed';
    if (this.body.writableLength > this.maxBufferedBytes) {
      if (this.drainWaiters.size === 0) {
        this.body.once('drain', () => {
          const waiters = [...this.drainWaiters];
          this.drainWaiters.clear();
          for (const wake of waiters) wake();
        });
      }
      this.drainWaiters.add(retry);
      return 'busy';
    }
    this.body.write(frame());
    return 'sent';
  }

  /** Writes unless the client is gone (the iterator's path: results queue behind each other). */
  write(bytes: Buffer): void {
    if (!this.isClosed) this.body.write(bytes);
  }

  readonly sink: DirectSink = {
    write: (result, retry) => this.offer(() => result.framed(nextEvent), retry),
  };

  /**
   * This response as a connection of the registry (src/realtime/connections.ts), of `viewer`
   * when its transport authenticated one, until the response closes; `end`: the transport can
   * end it as a whole (graphql-sse's single-connection streams).
   */
  register(registry: ConnectionRegistry, viewer: Viewer | null, end?: (reason: AppError) => void): Connection {
    const connection = registry.open(this.transport, {
      viewer,
      backlog: () => this.body.writableLength,
      ...(end && { end }),
    });
    if (this.closed) connection.close();
    else this.body.once('close', () => connection.close());
    return connection;
  }

  /** A `:` comment every PING_INTERVAL_MS while nothing else is waiting to go out; returns the stop. */
  keepAlive(): () => void {
    const ping = setInterval(() => {
      if (!this.isClosed && this.body.writableLength === 0) this.body.write(COMMENT);
    }, PING_INTERVAL_MS);
    ping.unref();
    const stop = (): void => clearInterval(ping);
    this.body.once('close', stop);
    return stop;
  }

  /** Writes the iterator's results after whatever the sink wrote, then `complete`. */
  async pump(iterator: AsyncIterator<ExecutionResult>): Promise<void> {
    if (this.closed) {
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
      return;
    }
    const stopPing = this.keepAlive();
    this.body.once('close', () => {
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    });
    try {
      for (;;) {
        const step = await iterator.next();
        if (this.closed) return;
        if (step.done) break;
        const { value } = step;
        if (value != null) this.body.write(nextEvent(Buffer.from(clientJson(value)), seqOf(value)));
      }
      if (!this.closed) this.body.end(COMPLETE);
    } catch (error) {
      this.body.destroy(error as Error);
    } finally {
      stopPing();
    }
  }
}

/** Requests this transport answers: SSE on Yoga's endpoint (graphql-sse's own path has its own handler). */
function wantsSse(request: Request, endpoint: string): boolean {
  const accept = request.headers.get('accept') ?? '';
  // multipart/mixed too: Yoga may choose it for incremental delivery, so leave such requests to Yoga.
  if (!accept.includes('text/event-stream') || accept.includes('multipart/mixed')) return false;
  const url = request.url;
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const end = url.indexOf('?');
  return url.slice(start, end === -1 ? undefined : end) === endpoint;
}

export function useSseTransport(options: {
  endpoint: string;
  clientBufferBytes: number;
  channels: SseChannels;
  /** Each stream is a connection there from when its subscription started until its response closes. */
  connections: ConnectionRegistry;
}): Plugin<DirectSinkContext> {
  const channels = new WeakMap<Request, SseChannel>();
  /** The viewer of each stream whose subscription started: a connection of that user (presence). */
  const viewers = new WeakMap<SseChannel, Viewer | null>();
  return {
    onContextBuilding({ context, extendContext }) {
      const request = (context as { request?: Request }).request;
      // graphql-ws and graphql-sse (graphql-sse.ts, another path) set their own sinks.
      if (!request || (context as DirectSinkContext).directSink || !wantsSse(request, options.endpoint)) return;
      let channel = channels.get(request);
      if (!channel) channels.set(request, (channel = options.channels.open(options.clientBufferBytes, 'sse')));
      const body = channel.body;
      // Backpressure (src/realtime/delivery.ts): what this client has not taken yet.
      extendContext({ directSink: channel.sink, clientBacklog: () => body.writableLength } as DirectSinkContext);
    },
    onSubscribe({ args }) {
      const context = args.contextValue as Partial<Context>;
      const channel = context.request && channels.get(context.request);
      if (!channel) return;
      return {
        onSubscribeResult({ result }) {
          if (isAsyncIterable(result)) viewers.set(channel, context.viewer ?? null);
        },
      };
    },
    onResultProcess({ request, result, setResultProcessor, serverContext }) {
      const channel = channels.get(request);
      if (!channel) return;
      if (!isAsyncIterable(result)) {
        // Not a stream (a query, a refused subscription): Yoga answers it; this channel is not used.
        channel.body.destroy();
        return;
      }
      // @whatwg-node/server destroys the body when the response closes, but only once it pipes
      // it; a client gone before that point must release the subscription too.
      const res = (serverContext as { res?: ServerResponse }).res;
      if (res) {
        if (res.closed || res.destroyed) channel.body.destroy();
        else res.once('close', () => channel.body.destroy());
      }
      setResultProcessor(async (stream, fetchAPI) => {
        void channel.pump((stream as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]());
        const connection = channel.register(options.connections, viewers.get(channel) ?? null);
        // Counted (presence has the entry) before the client reads the first event; bounded wait.
        await connection.ready;
        // A Node Readable body: @whatwg-node/server pipes it into the response as is.
        return new fetchAPI.Response(channel.body as never, { status: 200, headers: HEADERS });
      }, 'text/event-stream');
    },
  };
}
