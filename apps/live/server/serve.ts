/**
 * Serves the built apps (apps/live/dist), tells them where the API is (/config.json) and signs
 * guest tokens for the audience (POST /dev/guest-token). Dev-only: it belongs to the example
 * runner (example.ts) and the browser test, never to the product server, whose auth it does not
 * touch. The guest endpoint signs AUDIENCE tokens only, for a fresh user each time (what a
 * "continue as guest" sign-in would do); the organiser's ADMIN token is printed by the runner,
 * not served.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface AppServerOptions {
  /** The built apps (vite build's outDir). */
  distDir: string;
  /** The API's GraphQL endpoint over HTTP, as the browser reaches it. */
  apiUrl: string;
  /** Signs an AUDIENCE token for a new user (the same secret as the server). */
  signGuestToken: (claims: { sub: string; name: string }) => Promise<string>;
  host?: string;
  /** 0: any free port. */
  port?: number;
}

export interface AppServer {
  url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

const MAX_NAME = 60;

async function readBody(req: IncomingMessage, limit = 4096): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error('body too large');
  }
  return body;
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

export async function startAppServer(opts: AppServerOptions): Promise<AppServer> {
  const root = path.resolve(opts.distDir);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://apps');
    if (url.pathname === '/config.json') {
      return send(res, 200, TYPES['.json']!, JSON.stringify({ apiUrl: opts.apiUrl }), { 'cache-control': 'no-store' });
    }
    if (url.pathname === '/dev/guest-token') {
      if (req.method !== 'POST') return send(res, 405, 'text/plain', 'POST only', { allow: 'POST' });
      let name: unknown;
      try {
        name = (JSON.parse(await readBody(req)) as { name?: unknown }).name;
      } catch {
        return send(res, 400, 'text/plain', 'expected JSON { "name": "…" }');
      }
      if (typeof name !== 'string' || !name.trim() || name.length > MAX_NAME) {
        return send(res, 400, 'text/plain', `name: 1..${MAX_NAME} characters`);
      }
      const token = await opts.signGuestToken({ sub: `guest-${randomUUID()}`, name: name.trim() });
      return send(res, 200, TYPES['.json']!, JSON.stringify({ token }), { 'cache-control': 'no-store' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed');
    const file = path.resolve(root, '.' + decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname));
    if (!file.startsWith(root + path.sep)) return send(res, 404, 'text/plain', 'not found');
    try {
      const body = await readFile(file);
      // Vite's hashed assets never change; the pages do.
      const cache = file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache';
      return send(res, 200, TYPES[path.extname(file)] ?? 'application/octet-stream', body, { 'cache-control': cache });
    } catch {
      return send(res, 404, 'text/plain', 'not found');
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain', String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
