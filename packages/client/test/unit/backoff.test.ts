import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/backoff.js';
import { refreshAtMs, tokenLifetime } from '../../src/token.js';

describe('backoffDelay', () => {
  const options = { initialDelayMs: 200, maxDelayMs: 10_000 };
  it.each([
    [0, 0, 100],
    [0, 0.999, 300],
    [1, 0.5, 400],
    [3, 0.5, 1_600],
    [20, 0, 5_000],
    [20, 0.999, 14_990],
  ])('attempt %i with random %f waits %i ms', (attempt, random, ms) => {
    expect(backoffDelay(attempt, options, () => random)).toBe(ms);
  });
});

describe('tokens', () => {
  const jwt = (claims: object): string => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;
  it('reads exp and iat without verifying', () => {
    expect(tokenLifetime(jwt({ iat: 100, exp: 200 }))).toEqual({ issuedAtMs: 100_000, expiresAtMs: 200_000 });
    expect(tokenLifetime('opaque')).toBeUndefined();
    expect(tokenLifetime(jwt({ sub: 'x' }))).toBeUndefined();
  });
  it.each([
    [{ iat: 0, exp: 3600 }, 3_540_000], // an hour: 60 s before
    [{ iat: 0, exp: 20 }, 15_000], // 20 s: a quarter before
    [{ iat: 0, exp: 2 }, 1_000], // at least 1 s before
  ])('refreshes %j at %i ms', (claims, at) => {
    expect(refreshAtMs(jwt(claims), 0)).toBe(at);
  });
});
