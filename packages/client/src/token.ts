/** Tokens as the kit handles them: opaque strings, except that a JWT's `exp` schedules its refresh. */

/** A JWT's `iat` and `exp` in ms, read without verifying (the server verifies); undefined if it has no `exp`. */
export function tokenLifetime(token: string): { issuedAtMs: number | undefined; expiresAtMs: number } | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const base64 = payload
      .replace(/-/g, '+')
      .replace(/_/g, '/')
      .padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const claims = JSON.parse(atob(base64)) as { exp?: unknown; iat?: unknown };
    if (typeof claims.exp !== 'number') return undefined;
    return {
      issuedAtMs: typeof claims.iat === 'number' ? claims.iat * 1000 : undefined,
      expiresAtMs: claims.exp * 1000,
    };
  } catch {
    return undefined;
  }
}

/**
 * When to refresh a token: a quarter of its lifetime before `exp`, at least 1 s and at most 60 s
 * before it. undefined for a token without `exp`.
 */
export function refreshAtMs(token: string, nowMs: number): number | undefined {
  const lifetime = tokenLifetime(token);
  if (!lifetime) return undefined;
  const span = lifetime.expiresAtMs - (lifetime.issuedAtMs ?? nowMs);
  return lifetime.expiresAtMs - Math.min(60_000, Math.max(1_000, span / 4));
}
