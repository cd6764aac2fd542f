/**
 * Authentication: who is calling. JWTs (`Authorization: Bearer <JWT>` on HTTP/SSE,
 * `connectionParams.authorization` on graphql-ws) with claims sub, name, role:
 * - HS256 with JWT_SECRET (or the dev secret under DATA_DIR): what `npm run token` and the server
 *   itself (wallet sign-in) issue;
 * - RS256/ES256 with a key from JWKS_URL (an identity provider), picked by `kid`; an unknown `kid`
 *   refetches the set (at most once per JWKS_COOLDOWN_MS).
 * The header's `alg` chooses the key source and must match it: `none`, HS256 with a JWKS key or
 * RS256 without JWKS are refused. `exp`/`nbf` are checked with JWT_CLOCK_TOLERANCE_SECONDS of skew,
 * `iss`/`aud` when JWT_ISSUER/JWT_AUDIENCE are set. A token without `exp` is refused unless
 * JWT_REQUIRE_EXP=false (development only): every connection ends at its token's `exp`, and a
 * token without one would keep a socket or stream open forever. A missing token means an anonymous viewer; a
 * present but invalid one is rejected (never silently downgraded). A valid token then passes
 * `admit` (access.ts): revoked tokens and disabled users are refused, and a role an ADMIN set
 * replaces the token's.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  SignJWT,
  decodeProtectedHeader,
  jwtVerify,
  errors as joseErrors,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { Role } from '../generated/prisma/enums.js';
import { unauthenticated } from '../errors.js';
import { compactHeader, createHs256Verifier } from './jwt-hs256.js';

export interface Viewer {
  id: string;
  name: string;
  role: Role;
  /** Token expiry (epoch seconds), when the token has one. */
  expiresAt?: number;
  /** Token `iat` (epoch seconds), when the token has one: revocation compares it with User.tokensValidAfter. */
  issuedAt?: number;
}

export const DEV_SECRET_FILE = 'jwt-secret';
/** The only algorithm for the shared secret. */
export const SECRET_ALGORITHM = 'HS256';
/** The algorithms accepted for keys from JWKS_URL. */
export const JWKS_ALGORITHMS = ['RS256', 'ES256'] as const;
const ROLES = new Set<string>(Object.values(Role));
const MAX_SUB_LENGTH = 128;
const MAX_NAME_LENGTH = 200;

/**
 * JWT_SECRET when set; otherwise a random secret generated once and kept in DATA_DIR, so
 * `npm run token` and the server in the same directory agree without any setup.
 */
export async function resolveJwtSecret(opts: { jwtSecret: string | undefined; dataDir: string }): Promise<Uint8Array> {
  if (opts.jwtSecret !== undefined) return new TextEncoder().encode(opts.jwtSecret);
  const file = path.join(opts.dataDir, DEV_SECRET_FILE);
  try {
    return new TextEncoder().encode((await readFile(file, 'utf8')).trim());
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(opts.dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  // 'wx' loses the race cleanly if another process created it first; then read theirs.
  try {
    await writeFile(file, secret + '\n', { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return new TextEncoder().encode((await readFile(file, 'utf8')).trim());
  }
  return new TextEncoder().encode(secret);
}

export interface TokenClaims {
  sub: string;
  name?: string;
  role?: Role;
}

/** `iss`/`aud` the server puts into the tokens it signs (JWT_ISSUER/JWT_AUDIENCE), so they pass its own checks. */
export interface TokenIssuer {
  issuer?: string | undefined;
  audience?: string | undefined;
}

/** `expiresIn`: a duration like '12h', or an absolute `exp` in epoch seconds. */
export async function signToken(
  secret: Uint8Array,
  claims: TokenClaims,
  expiresIn: string | number = '12h',
  issuer: TokenIssuer = {},
): Promise<string> {
  const jwt = new SignJWT({ name: claims.name ?? claims.sub, role: claims.role ?? Role.AUDIENCE })
    .setProtectedHeader({ alg: SECRET_ALGORITHM, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn);
  if (issuer.issuer !== undefined) jwt.setIssuer(issuer.issuer);
  if (issuer.audience !== undefined) jwt.setAudience(issuer.audience);
  return jwt.sign(secret);
}

/** Signs a token valid for `ttlSeconds` (HS256, the server's secret, JWT_ISSUER/JWT_AUDIENCE): wallet sign-in. */
export type IssueToken = (claims: TokenClaims, ttlSeconds: number) => Promise<{ token: string; expiresAt: Date }>;

export function createTokenIssuer(secret: Uint8Array, issuer: TokenIssuer): IssueToken {
  return async (claims, ttlSeconds) => {
    const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
    return { token: await signToken(secret, claims, exp, issuer), expiresAt: new Date(exp * 1000) };
  };
}

/** Extracts the token from `Bearer <token>`; undefined when no credentials were sent. */
export function bearerToken(authorization: unknown): string | undefined {
  if (authorization === undefined || authorization === null || authorization === '') return undefined;
  if (typeof authorization !== 'string') throw unauthenticated('authorization must be a string "Bearer <JWT>"');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match?.[1]) throw unauthenticated('authorization must be "Bearer <JWT>"');
  return match[1];
}

export interface Authenticator {
  /** null for anonymous callers; throws UNAUTHENTICATED for bad, expired or revoked credentials. */
  authenticate(authorization: unknown): Promise<Viewer | null>;
}

/** The JWKS endpoint did not answer usably: not the caller's fault, so not UNAUTHENTICATED (masked, retryable). */
export class JwksUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`JWKS unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'JwksUnavailableError';
  }
}

export interface AuthenticatorOptions extends TokenIssuer {
  secret: Uint8Array;
  /** RS256/ES256 keys: jose's createRemoteJWKSet for JWKS_URL (createLocalJWKSet in tests). Unset: only HS256. */
  jwks?: JWTVerifyGetKey | undefined;
  /** JWT_CLOCK_TOLERANCE_SECONDS [5]. */
  clockToleranceSeconds?: number;
  /** JWT_REQUIRE_EXP [true]: refuse tokens without `exp`. */
  requireExp?: boolean;
  /** Revocation and server-side roles (access.ts); the token's viewer as is when absent. */
  admit?: (viewer: Viewer) => Promise<Viewer>;
}

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { secret, jwks, admit } = options;
  const requireExp = options.requireExp ?? true;
  const checks: JWTVerifyOptions = {
    clockTolerance: options.clockToleranceSeconds ?? 5,
    ...(options.issuer !== undefined && { issuer: options.issuer }),
    ...(options.audience !== undefined && { audience: options.audience }),
  };
  // Only "no key matches" is the token's fault; a JWKS endpoint that is down or answers garbage is ours.
  const jwksKey: JWTVerifyGetKey | undefined =
    jwks &&
    (async (header, token) => {
      try {
        return await jwks(header, token);
      } catch (error) {
        if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys)
          throw error;
        throw new JwksUnavailableError(error);
      }
    });

  // Synchronous node:crypto for the shared secret (jwt-hs256.ts): jose's WebCrypto path cost ~8%
  // of castVote's CPU, and every request with a token verifies one.
  const verifyHs256 = createHs256Verifier(secret, {
    clockToleranceSeconds: options.clockToleranceSeconds ?? 5,
    issuer: options.issuer,
    audience: options.audience,
  });

  async function verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    let header = compactHeader(token);
    try {
      // Not a compact JWS with a JSON header: jose reads what it can (a JWE's header) or refuses.
      header ??= decodeProtectedHeader(token) as Record<string, unknown>;
      alg = header['alg'] as string | undefined;
    } catch {
      throw unauthenticated('invalid token');
    }
    if (alg === SECRET_ALGORITHM) return verifyHs256(token, header);
    try {
      if (jwksKey && (JWKS_ALGORITHMS as readonly string[]).includes(alg ?? '')) {
        return (await jwtVerify(token, jwksKey, { ...checks, algorithms: [...JWKS_ALGORITHMS] })).payload;
      }
    } catch (error) {
      throw verificationError(error);
    }
    const accepted = [SECRET_ALGORITHM, ...(jwksKey ? JWKS_ALGORITHMS : [])].join(', ');
    throw unauthenticated(`token algorithm ${alg ?? 'none'} is not accepted (accepted: ${accepted})`);
  }

  return {
    async authenticate(authorization) {
      const token = bearerToken(authorization);
      if (token === undefined) return null;
      const viewer = viewerOf(await verify(token));
      if (requireExp && viewer.expiresAt === undefined) throw unauthenticated(NO_EXP);
      return admit ? admit(viewer) : viewer;
    },
  };
}

const NO_EXP = 'token has no exp claim; tokens must expire (JWT_REQUIRE_EXP=false accepts them, for development only)';

function verificationError(error: unknown): Error {
  if (error instanceof JwksUnavailableError) return error;
  if (error instanceof joseErrors.JWTExpired) return unauthenticated('token expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return unauthenticated('token not yet valid (nbf)');
    return unauthenticated(`token claim ${error.claim} is not accepted`);
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) return unauthenticated('no JWKS key matches the token (kid, alg)');
  return unauthenticated('invalid token');
}

function viewerOf(payload: JWTPayload): Viewer {
  const { sub, name, role, exp, iat } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
    throw unauthenticated(`token claim sub must be a string of 1..${MAX_SUB_LENGTH} characters`);
  }
  if (name !== undefined && (typeof name !== 'string' || name.length > MAX_NAME_LENGTH)) {
    throw unauthenticated(`token claim name must be a string of at most ${MAX_NAME_LENGTH} characters`);
  }
  if (role !== undefined && (typeof role !== 'string' || !ROLES.has(role))) {
    throw unauthenticated(`token claim role must be one of ${[...ROLES].join(', ')}`);
  }
  return {
    id: sub,
    name: name || sub,
    role: (role as Role | undefined) ?? Role.AUDIENCE,
    ...(exp !== undefined && { expiresAt: exp }),
    ...(iat !== undefined && { issuedAt: iat }),
  };
}
