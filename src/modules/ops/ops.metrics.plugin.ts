/**
 * GET /metrics: this instance's series in the Prometheus text format (api-contract.graphql,
 * "Operations"); a cluster worker's are those of every worker of its host (ops.metrics.aggregator.ts). With
 * METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise, compared
 * in constant time); without, open (keep the port private then).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';

export const METRICS_PATH = '/metrics';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Whether `authorization` is `Bearer <token>`: hashed first, so the comparison takes the same time whatever was sent. */
export function bearerMatches(authorization: string | null, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return timingSafeEqual(digest(match?.[1] ?? ''), digest(token)) && match !== null;
}

export function useMetricsEndpoint(opts: {
  render: () => Promise<string>;
  contentType: string;
  token: string | undefined;
}): Plugin {
  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname !== METRICS_PATH) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return endResponse(new fetchAPI.Response(null, { status: 405, headers: { allow: 'GET, HEAD' } }));
      }
      if (opts.token !== undefined && !bearerMatches(request.headers.get('authorization'), opts.token)) {
        return endResponse(
          new fetchAPI.Response('metrics need Authorization: Bearer <METRICS_TOKEN>\n', {
            status: 401,
            headers: { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' },
          }),
        );
      }
      return opts.render().then(
        (body) =>
          endResponse(
            new fetchAPI.Response(body, {
              status: 200,
              headers: { 'content-type': opts.contentType, 'cache-control': 'no-store' },
            }),
          ),
        // A worker that did not send its series in time: no scrape rather than partial sums
        // (Prometheus records the failed scrape; a sum missing a worker would read as a counter reset).
        (error: unknown) =>
          endResponse(
            new fetchAPI.Response(`metrics unavailable: ${error instanceof Error ? error.message : String(error)}\n`, {
              status: 503,
              headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
            }),
          ),
      );
    },
  };
}
