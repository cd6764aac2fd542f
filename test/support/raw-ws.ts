/** A bare graphql-transport-ws socket for protocol tests: send anything, read messages, see how it closes. */
import WebSocket from 'ws';

export interface RawSocket {
  socket: WebSocket;
  /** Parsed JSON messages from the server, in order. */
  messages: Record<string, unknown>[];
  /** Resolves with the close code and reason (1006 when the TCP connection just ended). */
  closed: Promise<{ code: number; reason: string }>;
  opened: Promise<void>;
  send(data: string | Buffer, opts?: { binary?: boolean }): void;
  /** The next message matching `predicate` (already received ones count); rejects on close or timeout. */
  next(predicate?: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): void;
}

export function rawSocket(
  url: string,
  protocol: string | string[] | null = 'graphql-transport-ws',
  headers: Record<string, string> = {},
): RawSocket {
  const socket = protocol === null ? new WebSocket(url, { headers }) : new WebSocket(url, protocol, { headers });
  const messages: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let isClosed = false;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      isClosed = true;
      for (const wake of waiters) wake();
      resolve({ code, reason: reason.toString() });
    });
  });
  socket.on('error', () => undefined); // the close event reports it
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('close', (code) => reject(new Error(`closed before open (${code})`)));
  });
  opened.catch(() => undefined);
  socket.on('message', (data) => {
    try {
      messages.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>); // binaryType 'nodebuffer'
    } catch {
      messages.push({ unparsed: (data as Buffer).toString() });
    }
    for (const wake of waiters) wake();
  });
  let consumed = 0;
  return {
    socket,
    messages,
    closed,
    opened,
    send(data, opts) {
      const write = (): void => {
        if (socket.readyState === WebSocket.OPEN) socket.send(data, { binary: opts?.binary ?? false });
      };
      if (socket.readyState === WebSocket.CONNECTING) void opened.then(write, () => undefined);
      else write();
    },
    next(predicate = () => true, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          for (let i = consumed; i < messages.length; i += 1) {
            if (predicate(messages[i]!)) {
              consumed = i + 1;
              cleanup();
              resolve(messages[i]!);
              return true;
            }
          }
          if (isClosed) {
            cleanup();
            reject(new Error(`socket closed; messages: ${JSON.stringify(messages)}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        const wake = (): void => void check();
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        if (!check()) waiters.add(wake);
      });
    },
    close() {
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(1000);
    },
  };
}
