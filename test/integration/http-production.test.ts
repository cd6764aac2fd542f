/**
 * What a production server answers outside the API: GraphiQL's page and assets (small page,
 * compressed and cacheable assets), GET / pointing to /graphql, request errors without internals,
 * and (docker-compose.yml's settings) the 413 that deploy/nginx.conf repeats for bodies it stops.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestApp, type TestApp } from '../support/app.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');
const composeApp = (
  parse(read('docker-compose.yml'), { merge: true }) as { services: { app1: { environment: Record<string, string> } } }
).services.app1.environment;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ NODE_ENV: 'production', MAX_REQUEST_BODY_BYTES: composeApp['MAX_REQUEST_BODY_BYTES'] });
});
afterAll(async () => {
  await t?.stop();
});

const HTML = { accept: 'text/html,application/xhtml+xml' };

async function graphiqlPage(headers: Record<string, string> = {}): Promise<Response> {
  return fetch(t.graphqlUrl, { headers: { ...HTML, ...headers } });
}

/** GET with the body as sent (fetch() would decode it). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function assetUrls(): Promise<string[]> {
  const html = await (await graphiqlPage()).text();
  return [...html.matchAll(/"(\/graphiql\/[^"]+)"/g)].map((m) => new URL(m[1]!, t.url).toString());
}

describe('GraphiQL', () => {
  it('is a small page, revalidated by ETag, that names its assets by content hash', async () => {
    const response = await graphiqlPage();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const html = await response.text();
    expect(html.length).toBeLessThan(4096); // the whole IDE inline was ~9 MB
    expect(await assetUrls()).toEqual(
      ['favicon.ico', 'graphiql.css', 'editor.worker.js', 'json.worker.js', 'graphql.worker.js', 'graphiql.js'].map(
        (name) => expect.stringMatching(new RegExp(`/graphiql/[\\w-]{16}/${name.replace('.', '\\.')}$`)),
      ),
    );

    const etag = response.headers.get('etag')!;
    expect(etag).toMatch(/^".+"$/);
    const again = await graphiqlPage({ 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it.each([
    ['br, gzip, deflate', 'br', zlib.brotliDecompressSync],
    ['gzip', 'gzip', zlib.gunzipSync],
    ['gzip;q=1, br;q=0', 'gzip', zlib.gunzipSync],
    ['identity', null, (b: Buffer) => b],
  ] as const)(
    'serves assets for Accept-Encoding "%s" as %s, cached for a year',
    async (acceptEncoding, encoding, decode) => {
      const { js } = await import('@graphql-yoga/render-graphiql/graphiql');
      const script = (await assetUrls()).find((url) => url.endsWith('/graphiql.js'))!;
      const response = await rawGet(script, { 'accept-encoding': acceptEncoding });
      expect(response.status).toBe(200);
      expect(response.headers['content-encoding']).toBe(encoding ?? undefined);
      expect(response.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(response.headers.vary).toBe('Accept-Encoding');
      if (encoding) expect(response.body.length).toBeLessThan(Buffer.byteLength(js) / 3);
      expect(decode(response.body).toString()).toBe(js);

      const again = await rawGet(script, {
        'accept-encoding': acceptEncoding,
        'if-none-match': response.headers.etag!,
      });
      expect(again.status).toBe(304);
    },
  );

  it('answers 404 for a name that is not one of its assets', async () => {
    const script = (await assetUrls()).find((url) => url.endsWith('/graphiql.js'))!;
    expect((await fetch(script.replace('graphiql.js', 'nope.js'))).status).toBe(404);
  });
});

describe('GET /', () => {
  it('sends a browser to GraphiQL', async () => {
    const response = await fetch(t.url + '/', { headers: HTML, redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/graphql');
  });

  it('tells anything else where the endpoints are', async () => {
    const response = await fetch(t.url + '/');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      graphql: '/graphql',
      'graphql-ws': '/graphql',
      'graphql-sse': '/graphql/stream',
    });
  });
});

describe('request errors', () => {
  // (application/json clients get the same body with 200: GraphQL over HTTP's legacy rule.)
  it('answer a body that is not JSON with 400 and no internals (nothing of the body echoed)', async () => {
    const response = await fetch(t.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: '{"query": "{ __typename }", "password": hunter2',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { extensions: Record<string, unknown> }[] };
    expect(body.errors[0]!.extensions).toEqual({ code: 'BAD_USER_INPUT', retryable: false, reason: 'BAD_REQUEST' });
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });
});

describe('deploy/nginx.conf', () => {
  it("answers a body beyond its own limit with the app's 413, as docker-compose.yml configures the app", async () => {
    const nginxBody = /location @body_too_large \{[^}]*return 413 '([^']+)';/.exec(read('deploy/nginx.conf'))?.[1];
    expect(nginxBody).toBeDefined();
    const limit = Number(composeApp['MAX_REQUEST_BODY_BYTES']);
    const response = await fetch(t.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(limit + 1),
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(nginxBody!)).toEqual(await response.json());
  });
});
