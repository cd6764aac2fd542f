/**
 * HS256 JWT verification with node:crypto, synchronously. jose's path goes through WebCrypto
 * (promises, DOMException-backed key handling, buffer copies): ~8% of castVote's CPU, one
 * verification per request. This checks what jose's `jwtVerify` checks for a compact HS256 token
 * with our options, in the same order, and fails with the messages auth.ts gives for jose's errors:
 * - three base64url segments; a JSON object header whose `crit`, when present, lists only
 *   recognised extensions (jose recognises `b64`; `b64: false` is refused for JWTs);
 * - the HMAC-SHA256 of `header.payload`, compared in constant time;
 * - a JSON object payload; `iss`/`aud` present and matching when configured; `iat`, `nbf`, `exp`
 *   numbers when present; `nbf` not after now + tolerance, `exp` after now − tolerance.
 * RS256/ES256 (JWKS) stay with jose.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { unauthenticated, type AppError } from '../errors.js';

export interface Hs256Checks {
  clockToleranceSeconds: number;
  issuer?: string | undefined;
  audience?: string | undefined;
}

export type Claims = Record<string, unknown>;

const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Decoded headers by their base64url text; frozen, since every caller shares them. */
const headers = new Map<string, Readonly<Record<string, unknown>>>();
const MAX_CACHED_HEADERS = 64;
const MAX_CACHED_HEADER_LENGTH = 512;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const invalid = (): AppError => unauthenticated('invalid token');
const claimRefused = (claim: string): AppError =>
  claim === 'nbf'
    ? unauthenticated('token not yet valid (nbf)')
    : unauthenticated(`token claim ${claim} is not accepted`);

/** A plain JSON object, as jose's isObject: not an array, null or class instance. */
function isObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Object]')
    return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/** base64url → JSON object; undefined for anything else (bad base64url, bad UTF-8, bad JSON, not an object). */
function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!SEGMENT.test(segment) || segment.length % 4 === 1) return undefined;
  try {
    const parsed: unknown = JSON.parse(strictUtf8.decode(Buffer.from(segment, 'base64url')));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The protected header of a compact JWS (three segments), or undefined when the token is not one
 * or its header is not a JSON object.
 */
export function compactHeader(token: string): Record<string, unknown> | undefined {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second < 0 || token.includes('.', second + 1)) return undefined;
  const segment = token.slice(0, first);
  // Every token of one issuer carries the same few header bytes: decode each distinct one once.
  const known = headers.get(segment);
  if (known) return known;
  const header = decodeJsonSegment(segment);
  if (header && segment.length <= MAX_CACHED_HEADER_LENGTH) {
    if (headers.size >= MAX_CACHED_HEADERS) headers.delete(headers.keys().next().value!);
    headers.set(segment, Object.freeze(header));
  }
  return header;
}

/** Refuses what jose's validateCrit/validateB64 refuse for a JWT: `crit` other than `["b64"]` with `b64: true`. */
function checkCrit(header: Record<string, unknown>): void {
  const { crit } = header;
  if (crit === undefined) return;
  if (!Array.isArray(crit) || crit.length === 0 || crit.some((c) => typeof c !== 'string' || c.length === 0))
    throw invalid();
  for (const parameter of crit as string[]) {
    if (parameter !== 'b64' || header[parameter] === undefined) throw invalid();
  }
  // Unencoded payloads are not JWTs (jose: "JWTs MUST NOT use unencoded payload").
  if (header['b64'] !== true) throw invalid();
}

export function createHs256Verifier(
  secret: Uint8Array,
  checks: Hs256Checks,
): (token: string, header: Record<string, unknown>) => Claims {
  const key: KeyObject = createSecretKey(Buffer.from(secret));
  const tolerance = checks.clockToleranceSeconds;
  if (!Number.isFinite(tolerance) || tolerance < 0)
    throw new TypeError('clockToleranceSeconds must be a finite number ≥ 0');

  /** `header` is compactHeader(token) (already read to pick the key); its `alg` is HS256. */
  return (token, header) => {
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    if (first <= 0 || second < 0 || token.includes('.', second + 1)) throw invalid();
    checkCrit(header);

    const signature = token.slice(second + 1);
    if (signature.length !== 43 || !SEGMENT.test(signature)) throw invalid();
    // Compared as canonical base64url text: one exact string per signature, not every string that decodes to it.
    const expected = Buffer.from(
      createHmac('sha256', key).update(token.slice(0, second)).digest('base64url'),
      'latin1',
    );
    if (!timingSafeEqual(Buffer.from(signature, 'latin1'), expected)) throw invalid();

    const claims = decodeJsonSegment(token.slice(first + 1, second));
    if (!claims) throw invalid();
    // jose's order: presence (iss, then aud), then values, then the dates.
    if (checks.issuer !== undefined && !Object.hasOwn(claims, 'iss')) throw claimRefused('iss');
    if (checks.audience !== undefined && !Object.hasOwn(claims, 'aud')) throw claimRefused('aud');
    if (checks.issuer !== undefined && claims['iss'] !== checks.issuer) throw claimRefused('iss');
    if (checks.audience !== undefined && !audienceMatches(claims['aud'], checks.audience)) throw claimRefused('aud');
    const now = Math.floor(Date.now() / 1000);
    const { iat, nbf, exp } = claims;
    if (iat !== undefined && typeof iat !== 'number') throw claimRefused('iat');
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + tolerance)) throw claimRefused('nbf');
    if (exp !== undefined) {
      if (typeof exp !== 'number') throw claimRefused('exp');
      if (exp <= now - tolerance) throw unauthenticated('token expired');
    }
    return claims;
  };
}

function audienceMatches(aud: unknown, expected: string): boolean {
  if (typeof aud === 'string') return aud === expected;
  return Array.isArray(aud) && aud.includes(expected);
}
