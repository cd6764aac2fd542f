import { ConnectionFailure, bearer } from './session.js';
import type { FetchFn, Result } from './types.js';

/**
 * POSTs one GraphQL request. A GraphQL answer (any status with a JSON body holding data or
 * errors) is the result; no answer, or a failure of the server or a proxy (5xx without a GraphQL
 * body) is a ConnectionFailure 'down'; a 4xx that is not GraphQL is 'blocked'.
 */
export async function postGraphQL(
  fetchFn: FetchFn,
  url: string,
  token: string | undefined,
  body: { query: string; variables?: Record<string, unknown>; operationName?: string | undefined },
  signal?: AbortSignal,
): Promise<Result> {
  let response: Response;
  try {
    response = await fetchFn(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...bearer(token),
      },
      body: JSON.stringify(body),
      ...(signal && { signal }),
    });
  } catch (error) {
    throw new ConnectionFailure('down', `POST ${url}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  const text = await response.text().catch(() => '');
  let result: Result | undefined;
  try {
    const parsed = JSON.parse(text) as Result;
    if (parsed && typeof parsed === 'object' && ('data' in parsed || 'errors' in parsed)) result = parsed;
  } catch {
    // not GraphQL: classified below
  }
  if (result) return result;
  throw new ConnectionFailure(
    response.status >= 400 && response.status < 500 ? 'blocked' : 'down',
    `POST ${url}: HTTP ${response.status}`,
  );
}
