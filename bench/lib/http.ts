/** Minimal GraphQL-over-HTTP client on node:http with keep-alive agents (no fetch/undici). */
import http from 'node:http';

/**
 * A distinct client address per simulated person, sent as X-Forwarded-For (the server runs with
 * TRUST_PROXY=true): 198.18.0.0/15 is the range reserved for benchmarking (RFC 2544). Only a
 * header: every connection still goes to 127.0.0.1. Without it, 10k people behind one IP trip the
 * per-IP rate limits and the fraud rules, as they should.
 */
export function clientIp(kind: 'subscriber' | 'voter', i: number): string {
  return `198.${kind === 'subscriber' ? 18 : 19}.${(i >> 8) & 255}.${i & 255}`;
}

export interface HttpResult {
  status: number;
  text: string;
}

/** `onRequest` sees the request before it is sent (the vote generator times its socket assignment). */
export function post(
  agent: http.Agent,
  url: URL,
  body: string,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
  onRequest?: (req: http.ClientRequest) => void,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    onRequest?.(req);
    req.end(body);
  });
}

export async function graphql<T>(
  agent: http.Agent,
  url: URL,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): Promise<T> {
  const res = await post(
    agent,
    url,
    JSON.stringify({ query, variables }),
    token ? { authorization: `Bearer ${token}` } : {},
  );
  let body: { data?: T; errors?: unknown[] };
  try {
    body = JSON.parse(res.text) as typeof body;
  } catch {
    throw new Error(`HTTP ${res.status} from ${url.href}: ${res.text.slice(0, 500)}`);
  }
  if (body.errors?.length || !body.data)
    throw new Error(`GraphQL errors (HTTP ${res.status}): ${JSON.stringify(body.errors).slice(0, 1000)}`);
  return body.data;
}

export function getStatus(url: string, timeoutMs = 2_000): Promise<number> {
  return getHead(url, timeoutMs).then((r) => r.status);
}

/** Status and headers of a GET on a connection of its own (0 when it fails). */
export function getHead(
  url: string,
  timeoutMs = 2_000,
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, headers: {} }));
  });
}
