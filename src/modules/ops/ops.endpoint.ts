/**
 * GET /metrics: this instance's series in the Prometheus text format (api-contract.graphql,
 * "Operations"). With METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`
 * (401 otherwise, compared in constant time); without, open (keep the port private then).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from './ops.metrics.js';

export const METRICS_PATH = '/metrics';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Whether `authorization` is `Bearer <token>`: hashed first, so the comparison takes the same time whatever was sent. */
export function bearerMatches(authorization: string | null, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return timingSafeEqual(digest(match?.[1] ?? ''), digest(token)) && match !== null;
}

export function useMetricsEndpoint(opts: { metrics: Metrics; token: string | undefined }): Plugin {
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
      return opts.metrics.render().then((body) =>
        endResponse(
          new fetchAPI.Response(body, {
            status: 200,
            headers: { 'content-type': opts.metrics.contentType, 'cache-control': 'no-store' },
          }),
        ),
      );
    },
  };
}
