/**
 * GraphiQL without a CDN, and without 9 MB per page view. @graphql-yoga/render-graphiql inlines
 * its whole bundle (script, stylesheet, three Monaco workers, favicon) into one uncompressed HTML
 * page. Here the page at GET /graphql is ~1 KB and names its assets under /graphiql/<hash>/:
 * - assets: the content hash is in the URL, so browsers keep them a year without asking again
 *   (`immutable`); brotli or gzip as the client's Accept-Encoding allows (9 MB → ~3 MB with
 *   brotli), each encoding compressed once per process, off the event loop;
 * - the page: an ETag and `no-cache`, so a reload costs a 304, and a new release (new hash) is
 *   picked up at once.
 * The bundle is loaded on the first request for either: a server nobody browses never holds it.
 * GET / sends a browser to GraphiQL and tells anything else where the endpoints are.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { shouldRenderGraphiQL, type Plugin } from 'graphql-yoga';

export const GRAPHIQL_ASSETS_PATH = '/graphiql';

type Encoding = 'br' | 'gzip' | 'identity';

interface Asset {
  type: string;
  body: Buffer;
  /** Compressed bodies, made on first demand. */
  encoded: Map<Exclude<Encoding, 'identity'>, Promise<Buffer>>;
}

interface Bundle {
  hash: string;
  assets: Map<string, Asset>;
  page: string;
  pageEtag: string;
}

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
/** Quality 6: ~1 s for the whole bundle and within 5% of the best size; 11 takes ~40 s. */
const BROTLI_QUALITY = 6;
const YEAR_SECONDS = 365 * 24 * 3600;

/**
 * The encoding to answer with: brotli, else gzip, else none, as far as `accept` (an
 * Accept-Encoding header) allows; `q=0` refuses, `*` stands for anything not named.
 */
export function negotiateEncoding(accept: string | null): Encoding {
  const q = new Map<string, number>();
  for (const part of (accept ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const weight = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    q.set(name, weight === undefined ? 1 : Number(weight));
  }
  const weight = (name: string): number => q.get(name) ?? q.get('*') ?? 0;
  const br = weight('br');
  const gz = Math.max(weight('gzip'), q.get('x-gzip') ?? 0);
  if (br > 0 && br >= gz) return 'br';
  return gz > 0 ? 'gzip' : 'identity';
}

function etagOf(content: string | Buffer): string {
  return `"${createHash('sha256').update(content).digest('base64url').slice(0, 22)}"`;
}

/** Safe inside a <script> element and an HTML attribute. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replaceAll('<', '\\u003c').replaceAll('&', '\\u0026');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function loadBundle(title: string, options: Record<string, unknown>): Promise<Bundle> {
  const graphiql = await import('@graphql-yoga/render-graphiql/graphiql');
  const favicon = /^data:([^;,]+);base64,(.*)$/s.exec(graphiql.favicon);
  const files: [string, string, string | Buffer][] = [
    ['graphiql.js', 'text/javascript; charset=utf-8', graphiql.js],
    ['graphiql.css', 'text/css; charset=utf-8', graphiql.css],
    ['editor.worker.js', 'text/javascript; charset=utf-8', graphiql.editorWorkerService],
    ['json.worker.js', 'text/javascript; charset=utf-8', graphiql.jsonWorker],
    ['graphql.worker.js', 'text/javascript; charset=utf-8', graphiql.graphqlWorker],
    ...(favicon ? [['favicon.ico', favicon[1]!, Buffer.from(favicon[2]!, 'base64')] as [string, string, Buffer]] : []),
  ];
  const hasher = createHash('sha256');
  const assets = new Map<string, Asset>();
  for (const [name, type, content] of files) {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    hasher.update(name).update(body);
    assets.set(name, { type, body, encoded: new Map() });
  }
  const hash = hasher.digest('base64url').slice(0, 16);
  const url = (name: string): string => `${GRAPHIQL_ASSETS_PATH}/${hash}/${name}`;
  // The same bootstrap as render-graphiql's page, with URLs where it inlines the files; Monaco
  // starts its workers from these URLs instead of blobs.
  const workers = {
    editorWorkerService: url('editor.worker.js'),
    json: url('json.worker.js'),
    graphql: url('graphql.worker.js'),
  };
  const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${escapeHtml(title)}</title>
    <link rel="icon" href="${favicon ? url('favicon.ico') : escapeHtml(graphiql.favicon)}" />
    <link rel="stylesheet" href="${url('graphiql.css')}" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root"></div>
    <script>
      const workers = ${scriptJson(workers)};
      self['MonacoEnvironment'] = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] };
    </script>
    <script src="${url('graphiql.js')}"></script>
    <script>
      YogaGraphiQL.renderYogaGraphiQL(window.document.querySelector('#root'), ${scriptJson({ title, ...options })});
    </script>
  </body>
</html>
`;
  return { hash, assets, page, pageEtag: etagOf(page) };
}

function encode(asset: Asset, encoding: Encoding): Promise<Buffer> {
  if (encoding === 'identity') return Promise.resolve(asset.body);
  let encoded = asset.encoded.get(encoding);
  if (!encoded) {
    encoded =
      encoding === 'br'
        ? brotli(asset.body, {
            params: {
              [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
              [zlib.constants.BROTLI_PARAM_SIZE_HINT]: asset.body.length,
            },
          })
        : gzip(asset.body);
    asset.encoded.set(encoding, encoded);
    encoded.catch(() => asset.encoded.delete(encoding)); // a failure is retried by the next request
  }
  return encoded;
}

/** Whether If-None-Match names `etag` (weak or strong, or `*`). */
function notModified(ifNoneMatch: string | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

export function useGraphiQL(opts: {
  graphqlEndpoint: string;
  title: string;
  options?: Record<string, unknown>;
}): Plugin {
  let bundle: Promise<Bundle> | undefined;
  const load = (): Promise<Bundle> => {
    bundle ??= loadBundle(opts.title, opts.options ?? {});
    bundle.catch(() => (bundle = undefined));
    return bundle;
  };
  const assetPrefix = `${GRAPHIQL_ASSETS_PATH}/`;

  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      const { pathname } = url;
      if (request.method !== 'GET') return;

      if (pathname === '/') {
        if (request.headers.get('accept')?.includes('text/html')) {
          endResponse(new fetchAPI.Response(null, { status: 302, headers: { location: opts.graphqlEndpoint } }));
        } else {
          const endpoints = {
            graphql: opts.graphqlEndpoint,
            graphiql: `${opts.graphqlEndpoint} (in a browser)`,
            'graphql-ws': opts.graphqlEndpoint,
            'graphql-sse': `${opts.graphqlEndpoint}/stream`,
            health: '/health',
            ready: '/ready',
          };
          endResponse(fetchAPI.Response.json(endpoints));
        }
        return;
      }

      if (
        (pathname === opts.graphqlEndpoint || pathname === `${opts.graphqlEndpoint}/`) &&
        shouldRenderGraphiQL(request)
      ) {
        return load().then(({ page, pageEtag }) => {
          const headers = { etag: pageEtag, 'cache-control': 'no-cache' };
          endResponse(
            notModified(request.headers.get('if-none-match'), pageEtag)
              ? new fetchAPI.Response(null, { status: 304, headers })
              : new fetchAPI.Response(page, { headers: { ...headers, 'content-type': 'text/html; charset=utf-8' } }),
          );
        });
      }

      if (!pathname.startsWith(assetPrefix)) return;
      const [hash, name, ...rest] = pathname.slice(assetPrefix.length).split('/');
      return load().then(async (loaded) => {
        const asset = rest.length === 0 && name ? loaded.assets.get(name) : undefined;
        if (!asset) {
          endResponse(new fetchAPI.Response('Not Found', { status: 404 }));
          return;
        }
        const encoding = negotiateEncoding(request.headers.get('accept-encoding'));
        const etag = `"${loaded.hash}-${encoding}"`;
        const headers: Record<string, string> = {
          etag,
          vary: 'Accept-Encoding',
          // A page of an earlier release (another instance, mid-deploy) may ask for an older hash:
          // it gets today's file, but not for keeps.
          'cache-control': hash === loaded.hash ? `public, max-age=${YEAR_SECONDS}, immutable` : 'no-cache',
        };
        if (notModified(request.headers.get('if-none-match'), etag)) {
          endResponse(new fetchAPI.Response(null, { status: 304, headers }));
          return;
        }
        const body = await encode(asset, encoding);
        if (encoding !== 'identity') headers['content-encoding'] = encoding;
        // Buffer<ArrayBufferLike> is a Uint8Array view of an ArrayBuffer here (zlib, Buffer.from).
        endResponse(
          new fetchAPI.Response(body as Uint8Array<ArrayBuffer>, {
            headers: { ...headers, 'content-type': asset.type, 'content-length': String(body.length) },
          }),
        );
      });
    },
  };
}
