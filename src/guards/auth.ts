/**
 * Authentication: who is calling. HS256 JWTs (`Authorization: Bearer <JWT>` on HTTP/SSE,
 * `connectionParams.authorization` on graphql-ws) with claims sub, name, role. A missing token
 * means an anonymous viewer; a present but invalid one is rejected (never silently downgraded).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { Role } from '../generated/prisma/enums.js';
import { unauthenticated } from '../errors.js';

export interface Viewer {
  id: string;
  name: string;
  role: Role;
  /** Token expiry (epoch seconds), when the token has one. */
  expiresAt?: number;
}

export const DEV_SECRET_FILE = 'jwt-secret';
const ALGORITHM = 'HS256';
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

export async function signToken(secret: Uint8Array, claims: TokenClaims, expiresIn: string | number = '12h'): Promise<string> {
  return new SignJWT({ name: claims.name ?? claims.sub, role: claims.role ?? Role.AUDIENCE })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(secret);
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
  /** null for anonymous callers; throws UNAUTHENTICATED for bad credentials. */
  authenticate(authorization: unknown): Promise<Viewer | null>;
}

export function createAuthenticator(secret: Uint8Array): Authenticator {
  return {
    async authenticate(authorization) {
      const token = bearerToken(authorization);
      if (token === undefined) return null;
      let payload;
      try {
        ({ payload } = await jwtVerify(token, secret, { algorithms: [ALGORITHM] }));
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw unauthenticated('token expired');
        throw unauthenticated('invalid token');
      }
      const { sub, name, role, exp } = payload;
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
        name: (name as string | undefined) || sub,
        role: (role as Role | undefined) ?? Role.AUDIENCE,
        ...(exp !== undefined && { expiresAt: exp }),
      };
    },
  };
}
