/**
 * Authentication without a network: the claims table (HS256 with issuer, audience and clock
 * tolerance), RS256/ES256 through a local JWKS and algorithm confusion, base58 and ed25519 for
 * wallet sign-in, the admission cache (one read per user, dropped by an event), and the stream
 * helpers that end subscriptions.
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import bs58 from 'bs58';
import {
  SignJWT,
  UnsecuredJWT,
  createLocalJWKSet,
  errors as joseErrors,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  jwtVerify,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { AppError } from '../../src/errors.js';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { createUserAccess } from '../../src/guards/access.js';
import { USER_ACCESS_ALL, type UserAccessChange } from '../../src/modules/auth/auth.events.js';
import { createUserRecords } from '../../src/modules/users/users.service.js';
import { JwksUnavailableError, createAuthenticator, createTokenIssuer, type Viewer } from '../../src/guards/auth.js';
import { catchStreamErrors, runAt, streamUntil } from '../../src/guards/streams.js';
import { challengeMessage, decodeBase58, verifyEd25519 } from '../../src/modules/auth/auth.rules.js';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';

const SECRET = new TextEncoder().encode('unit-secret-unit-secret-unit-secret-0123');
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'ovation';
const now = () => Math.floor(Date.now() / 1000);
const NO_EXP = 'token has no exp claim; tokens must expire (JWT_REQUIRE_EXP=false accepts them, for development only)';

/** The reason an authentication failed (its message), or the viewer it produced. */
async function outcome(promise: Promise<Viewer | null>): Promise<string | Viewer | null> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof AppError) return `${error.code}: ${error.message}`;
    throw error;
  }
}

describe('HS256 claims', () => {
  const auth = createAuthenticator({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 5 });
  type Build = (jwt: SignJWT) => SignJWT;
  const token = (claims: Record<string, unknown>, build: Build = (j) => j, secret = SECRET) =>
    build(new SignJWT(claims).setProtectedHeader({ alg: 'HS256' })).sign(secret);
  const ok: Build = (j) =>
    j.setSubject('alice').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('1h');

  it.each<[string, () => Promise<string>, string | Partial<Viewer>]>([
    ['a valid token', () => token({ name: 'Alice', role: 'JUDGE' }, ok), { id: 'alice', name: 'Alice', role: 'JUDGE' }],
    ['no role → AUDIENCE, no name → sub', () => token({}, ok), { id: 'alice', name: 'alice', role: 'AUDIENCE' }],
    ['expired 10 s ago', () => token({}, (j) => ok(j).setExpirationTime(now() - 10)), 'UNAUTHENTICATED: token expired'],
    ['expired 2 s ago (within tolerance)', () => token({}, (j) => ok(j).setExpirationTime(now() - 2)), { id: 'alice' }],
    [
      'nbf in 60 s',
      () => token({}, (j) => ok(j).setNotBefore(now() + 60)),
      'UNAUTHENTICATED: token not yet valid (nbf)',
    ],
    ['nbf in 2 s (within tolerance)', () => token({}, (j) => ok(j).setNotBefore(now() + 2)), { id: 'alice' }],
    [
      'another issuer',
      () => token({}, (j) => ok(j).setIssuer('https://evil.test')),
      'UNAUTHENTICATED: token claim iss is not accepted',
    ],
    [
      'no issuer',
      () => token({}, (j) => j.setSubject('alice').setAudience(AUDIENCE).setExpirationTime('1h')),
      'UNAUTHENTICATED: token claim iss is not accepted',
    ],
    [
      'another audience',
      () => token({}, (j) => ok(j).setAudience('other')),
      'UNAUTHENTICATED: token claim aud is not accepted',
    ],
    ['one of several audiences', () => token({}, (j) => ok(j).setAudience(['other', AUDIENCE])), { id: 'alice' }],
    ['another secret', () => token({}, ok, new TextEncoder().encode('x'.repeat(40))), 'UNAUTHENTICATED: invalid token'],
    [
      'alg none',
      () => Promise.resolve(new UnsecuredJWT({ sub: 'alice', iss: ISSUER, aud: AUDIENCE }).encode()),
      'UNAUTHENTICATED: token algorithm none is not accepted (accepted: HS256)',
    ],
    [
      'no sub',
      () => token({}, (j) => j.setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1h')),
      'UNAUTHENTICATED: token claim sub must be a string of 1..128 characters',
    ],
    [
      'sub too long',
      () => token({}, (j) => ok(j).setSubject('x'.repeat(129))),
      'UNAUTHENTICATED: token claim sub must be a string of 1..128 characters',
    ],
    [
      'unknown role',
      () => token({ role: 'ROOT' }, ok),
      'UNAUTHENTICATED: token claim role must be one of AUDIENCE, FOUNDER, JUDGE, ADMIN',
    ],
    [
      'name too long',
      () => token({ name: 'n'.repeat(201) }, ok),
      'UNAUTHENTICATED: token claim name must be a string of at most 200 characters',
    ],
    ['not a JWT', () => Promise.resolve('not.a.jwt'), 'UNAUTHENTICATED: invalid token'],
    [
      'no exp',
      () => token({}, (j) => j.setSubject('alice').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt()),
      `UNAUTHENTICATED: ${NO_EXP}`,
    ],
  ])('%s', async (_name, make, expected) => {
    const result = await outcome(auth.authenticate(`Bearer ${await make()}`));
    if (typeof expected === 'string') expect(result).toBe(expected);
    else expect(result).toMatchObject(expected);
  });

  it.each([
    [undefined, null],
    ['', null],
    ['Basic dXNlcjpwYXNz', 'UNAUTHENTICATED: authorization must be "Bearer <JWT>"'],
    [42, 'UNAUTHENTICATED: authorization must be a string "Bearer <JWT>"'],
  ])('authorization %j → %j', async (header, expected) => {
    expect(await outcome(auth.authenticate(header))).toBe(expected);
  });

  it('keeps iat and exp on the viewer, for revocation and expiry', async () => {
    const viewer = await auth.authenticate(`Bearer ${await token({}, ok)}`);
    expect(viewer?.issuedAt).toBeGreaterThan(now() - 5);
    expect(viewer!.expiresAt! - viewer!.issuedAt!).toBe(3600);
  });

  it('JWT_REQUIRE_EXP=false accepts a token without exp, as a viewer that never expires', async () => {
    const relaxed = createAuthenticator({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, requireExp: false });
    const forever = await token({}, (j) => j.setSubject('alice').setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt());
    const viewer = await relaxed.authenticate(`Bearer ${forever}`);
    expect(viewer).toMatchObject({ id: 'alice' });
    expect(viewer?.expiresAt).toBeUndefined();
    // Relaxed is not lax: an exp that is present is still checked.
    expect(
      await outcome(relaxed.authenticate(`Bearer ${await token({}, (j) => ok(j).setExpirationTime(now() - 10))}`)),
    ).toBe('UNAUTHENTICATED: token expired');
  });

  it('without JWT_ISSUER/JWT_AUDIENCE, iss and aud are not required', async () => {
    const open = createAuthenticator({ secret: SECRET });
    const plain = await token({}, (j) => j.setSubject('bob').setExpirationTime('1h'));
    expect(await open.authenticate(`Bearer ${plain}`)).toMatchObject({ id: 'bob' });
  });

  it('tokens the server issues pass its own checks (wallet sign-in)', async () => {
    const issued = await createTokenIssuer(SECRET, { issuer: ISSUER, audience: AUDIENCE })(
      { sub: 'wallet:x', role: 'AUDIENCE' },
      60,
    );
    expect(await auth.authenticate(`Bearer ${issued.token}`)).toMatchObject({
      id: 'wallet:x',
      expiresAt: issued.expiresAt.getTime() / 1000,
    });
  });

  it('passes every verified viewer through admit (revocation, server-side role)', async () => {
    const admit = vi.fn(async (v: Viewer) => ({ ...v, role: 'ADMIN' as const }));
    const admitting = createAuthenticator({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, admit });
    expect(await admitting.authenticate(`Bearer ${await token({ role: 'AUDIENCE' }, ok)}`)).toMatchObject({
      role: 'ADMIN',
    });
    expect(admit).toHaveBeenCalledOnce();
  });
});

describe('HS256 verification with node:crypto agrees with jose', () => {
  const auth = createAuthenticator({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 5 });
  const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');
  const json = (value: unknown) => b64(JSON.stringify(value));
  const hmac = (input: string, secret: Uint8Array = SECRET) =>
    createHmac('sha256', secret).update(input).digest('base64url');
  /** A compact token from raw segments, signed over exactly those segments. */
  const raw = (header: string, payload: string, secret: Uint8Array = SECRET) =>
    `${header}.${payload}.${hmac(`${header}.${payload}`, secret)}`;
  const HEADER = json({ alg: 'HS256', typ: 'JWT' });
  const claims = (extra: Record<string, unknown> = {}) => ({
    sub: 'alice',
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now(),
    exp: now() + 3600,
    ...extra,
  });
  const good = () => raw(HEADER, json(claims()));

  /** What the previous implementation (jose's jwtVerify, errors mapped as auth.ts maps them) said. */
  async function joseSays(token: string): Promise<string> {
    try {
      await jwtVerify(token, SECRET, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE, clockTolerance: 5 });
      return 'ok';
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return 'UNAUTHENTICATED: token expired';
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        return error.claim === 'nbf'
          ? 'UNAUTHENTICATED: token not yet valid (nbf)'
          : `UNAUTHENTICATED: token claim ${error.claim} is not accepted`;
      }
      return 'UNAUTHENTICATED: invalid token';
    }
  }
  async function weSay(token: string): Promise<string> {
    const result = await outcome(auth.authenticate(`Bearer ${token}`));
    return typeof result === 'string' ? result : 'ok';
  }

  const tamper = (token: string, part: number, edit: (segment: string) => string) =>
    token
      .split('.')
      .map((segment, i) => (i === part ? edit(segment) : segment))
      .join('.');
  const flipFirst = (segment: string) => (segment.startsWith('A') ? 'B' : 'A') + segment.slice(1);

  it.each<[string, () => string, string]>([
    ['a valid token', good, 'ok'],
    ['tampered signature', () => tamper(good(), 2, flipFirst), 'UNAUTHENTICATED: invalid token'],
    [
      'tampered payload',
      () => tamper(good(), 1, () => json(claims({ sub: 'mallory' }))),
      'UNAUTHENTICATED: invalid token',
    ],
    [
      'signed with another secret',
      () => raw(HEADER, json(claims()), new TextEncoder().encode('y'.repeat(40))),
      'UNAUTHENTICATED: invalid token',
    ],
    ['signature cut short', () => tamper(good(), 2, (s) => s.slice(0, -2)), 'UNAUTHENTICATED: invalid token'],
    ['empty signature', () => tamper(good(), 2, () => ''), 'UNAUTHENTICATED: invalid token'],
    ['four segments', () => `${good()}.x`, 'UNAUTHENTICATED: invalid token'],
    ['expired', () => raw(HEADER, json(claims({ exp: now() - 60 }))), 'UNAUTHENTICATED: token expired'],
    [
      'expiring at the tolerance edge',
      () => raw(HEADER, json(claims({ exp: now() - 5 }))),
      'UNAUTHENTICATED: token expired',
    ],
    [
      'exp a string',
      () => raw(HEADER, json(claims({ exp: String(now() + 60) }))),
      'UNAUTHENTICATED: token claim exp is not accepted',
    ],
    [
      'nbf in the future',
      () => raw(HEADER, json(claims({ nbf: now() + 60 }))),
      'UNAUTHENTICATED: token not yet valid (nbf)',
    ],
    ['nbf a string', () => raw(HEADER, json(claims({ nbf: 'soon' }))), 'UNAUTHENTICATED: token not yet valid (nbf)'],
    [
      'iat a string',
      () => raw(HEADER, json(claims({ iat: 'then' }))),
      'UNAUTHENTICATED: token claim iat is not accepted',
    ],
    [
      'iss mismatch',
      () => raw(HEADER, json(claims({ iss: 'https://evil.test' }))),
      'UNAUTHENTICATED: token claim iss is not accepted',
    ],
    [
      'iss missing',
      () => raw(HEADER, json(claims({ iss: undefined }))),
      'UNAUTHENTICATED: token claim iss is not accepted',
    ],
    [
      'aud mismatch',
      () => raw(HEADER, json(claims({ aud: 'other' }))),
      'UNAUTHENTICATED: token claim aud is not accepted',
    ],
    [
      'aud missing',
      () => raw(HEADER, json(claims({ aud: undefined }))),
      'UNAUTHENTICATED: token claim aud is not accepted',
    ],
    ['aud an array with ours', () => raw(HEADER, json(claims({ aud: ['x', AUDIENCE] }))), 'ok'],
    [
      'aud an array without ours',
      () => raw(HEADER, json(claims({ aud: ['x'] }))),
      'UNAUTHENTICATED: token claim aud is not accepted',
    ],
    ['payload not JSON', () => raw(HEADER, b64('{"sub":')), 'UNAUTHENTICATED: invalid token'],
    ['payload a JSON array', () => raw(HEADER, json(['alice'])), 'UNAUTHENTICATED: invalid token'],
    ['payload not UTF-8', () => raw(HEADER, b64(Buffer.from([0x7b, 0xff, 0x7d]))), 'UNAUTHENTICATED: invalid token'],
    ['header not JSON', () => raw(b64('{"alg":'), json(claims())), 'UNAUTHENTICATED: invalid token'],
    [
      'crit naming an unknown extension',
      () => raw(json({ alg: 'HS256', crit: ['exp-ext'], 'exp-ext': 1 }), json(claims())),
      'UNAUTHENTICATED: invalid token',
    ],
    ['crit empty', () => raw(json({ alg: 'HS256', crit: [] }), json(claims())), 'UNAUTHENTICATED: invalid token'],
    [
      'crit not an array',
      () => raw(json({ alg: 'HS256', crit: 'b64' }), json(claims())),
      'UNAUTHENTICATED: invalid token',
    ],
    [
      'crit b64 without b64',
      () => raw(json({ alg: 'HS256', crit: ['b64'] }), json(claims())),
      'UNAUTHENTICATED: invalid token',
    ],
    [
      'crit b64 with b64 false (unencoded payload)',
      () => raw(json({ alg: 'HS256', crit: ['b64'], b64: false }), json(claims())),
      'UNAUTHENTICATED: invalid token',
    ],
    ['crit b64 with b64 true', () => raw(json({ alg: 'HS256', crit: ['b64'], b64: true }), json(claims())), 'ok'],
    [
      'crit with a duplicate (accepted, like jose)',
      () => raw(json({ alg: 'HS256', crit: ['b64', 'b64'], b64: true }), json(claims())),
      'ok',
    ],
    [
      'b64 false without crit (ignored, like jose)',
      () => raw(json({ alg: 'HS256', b64: false }), json(claims())),
      'ok',
    ],
    [
      'a typ other than JWT (not checked, like jose without a typ option)',
      () => raw(json({ alg: 'HS256', typ: 'at+jwt' }), json(claims())),
      'ok',
    ],
  ])('%s', async (_name, make, expected) => {
    const token = make();
    expect(await weSay(token)).toBe(expected);
    expect(await joseSays(token)).toBe(expected);
  });

  it('refuses a signature in a non-canonical encoding', async () => {
    const token = good();
    // The last character of a 32-byte base64url value carries 2 unused bits: another character decodes to the same bytes.
    const last = token.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(Buffer.from(token.split('.')[2]!.slice(0, -1) + sibling, 'base64url')).toEqual(
      Buffer.from(token.split('.')[2]!, 'base64url'),
    );
    expect(await weSay(token.slice(0, -1) + sibling)).toBe('UNAUTHENTICATED: invalid token');
  });

  it('names the algorithm of a token it does not accept', async () => {
    const hs384 = `${json({ alg: 'HS384' })}.${json(claims())}.${createHmac('sha384', SECRET).update('x').digest('base64url')}`;
    expect(await weSay(hs384)).toBe('UNAUTHENTICATED: token algorithm HS384 is not accepted (accepted: HS256)');
    expect(await weSay(raw(json({ typ: 'JWT' }), json(claims())))).toBe(
      'UNAUTHENTICATED: token algorithm none is not accepted (accepted: HS256)',
    );
  });
});

describe('RS256/ES256 through JWKS', () => {
  let rsa: { privateKey: CryptoKey; jwk: JWK };
  let ec: { privateKey: CryptoKey; jwk: JWK };
  let rsaPem: string;
  let jwks: JWTVerifyGetKey;

  beforeAll(async () => {
    const r = await generateKeyPair('RS256', { extractable: true });
    const e = await generateKeyPair('ES256', { extractable: true });
    rsa = {
      privateKey: r.privateKey,
      jwk: { ...(await exportJWK(r.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    };
    ec = {
      privateKey: e.privateKey,
      jwk: { ...(await exportJWK(e.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    };
    rsaPem = await exportSPKI(r.publicKey);
    jwks = createLocalJWKSet({ keys: [rsa.jwk, ec.jwk] });
  });

  const signed = (alg: string, kid: string, key: CryptoKey | Uint8Array, sub = 'idp-user') =>
    new SignJWT({ role: 'FOUNDER' })
      .setProtectedHeader({ alg, kid })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(key);

  it.each([
    ['RS256', 'rsa-1', () => rsa.privateKey, { id: 'idp-user', role: 'FOUNDER' }],
    ['ES256', 'ec-1', () => ec.privateKey, { id: 'idp-user', role: 'FOUNDER' }],
    [
      'RS256 with an unknown kid',
      'rsa-2',
      () => rsa.privateKey,
      'UNAUTHENTICATED: no JWKS key matches the token (kid, alg)',
    ],
    [
      'ES256 naming the RSA key',
      'rsa-1',
      () => ec.privateKey,
      'UNAUTHENTICATED: no JWKS key matches the token (kid, alg)',
    ],
    // Algorithm confusion: the RSA public key (public knowledge) used as an HMAC secret.
    [
      'HS256 keyed with the RSA public key',
      'rsa-1',
      () => new TextEncoder().encode(rsaPem),
      'UNAUTHENTICATED: invalid token',
    ],
  ] as const)('%s', async (alg, kid, key, expected) => {
    const auth = createAuthenticator({ secret: SECRET, jwks });
    const result = await outcome(auth.authenticate(`Bearer ${await signed(alg.slice(0, 5), kid, key())}`));
    if (typeof expected === 'string') expect(result).toBe(expected);
    else expect(result).toMatchObject(expected);
  });

  it('refuses an IdP token without exp like an HS256 one', async () => {
    const auth = createAuthenticator({ secret: SECRET, jwks });
    const forever = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
      .setSubject('idp-user')
      .setIssuedAt()
      .sign(rsa.privateKey);
    expect(await outcome(auth.authenticate(`Bearer ${forever}`))).toBe(`UNAUTHENTICATED: ${NO_EXP}`);
    expect(
      await createAuthenticator({ secret: SECRET, jwks, requireExp: false }).authenticate(`Bearer ${forever}`),
    ).toMatchObject({ id: 'idp-user' });
  });

  it('refuses RS256 when no JWKS is configured', async () => {
    const auth = createAuthenticator({ secret: SECRET });
    expect(await outcome(auth.authenticate(`Bearer ${await signed('RS256', 'rsa-1', rsa.privateKey)}`))).toBe(
      'UNAUTHENTICATED: token algorithm RS256 is not accepted (accepted: HS256)',
    );
  });

  it('refuses algorithms outside HS256/RS256/ES256 even with a matching JWKS key', async () => {
    const ps = await generateKeyPair('PS256', { extractable: true });
    const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(ps.publicKey)), kid: 'ps-1', alg: 'PS256' }] });
    const auth = createAuthenticator({ secret: SECRET, jwks: keys });
    expect(await outcome(auth.authenticate(`Bearer ${await signed('PS256', 'ps-1', ps.privateKey)}`))).toBe(
      'UNAUTHENTICATED: token algorithm PS256 is not accepted (accepted: HS256, RS256, ES256)',
    );
  });

  it('a JWKS endpoint that fails is not the caller’s fault (masked, retryable)', async () => {
    const auth = createAuthenticator({
      secret: SECRET,
      jwks: async () => Promise.reject(new TypeError('fetch failed')),
    });
    await expect(auth.authenticate(`Bearer ${await signed('RS256', 'rsa-1', rsa.privateKey)}`)).rejects.toBeInstanceOf(
      JwksUnavailableError,
    );
  });
});

describe('wallet cryptography', () => {
  const keyPair = (): { publicKey: Uint8Array; privateKey: KeyObject } => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return { publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'), privateKey };
  };

  it.each([
    ['32 random bytes', bs58.encode(Buffer.alloc(32, 7)), 32, true],
    ['leading zero bytes survive', bs58.encode(Buffer.concat([Buffer.alloc(3), Buffer.alloc(29, 9)])), 32, true],
    ['31 bytes', bs58.encode(Buffer.alloc(31, 7)), 32, false],
    ['33 bytes', bs58.encode(Buffer.alloc(33, 7)), 32, false],
    ['a character outside base58 (0)', '0' + bs58.encode(Buffer.alloc(32, 7)).slice(1), 32, false],
    ['a character outside base58 (l)', 'l' + bs58.encode(Buffer.alloc(32, 7)).slice(1), 32, false],
    ['empty', '', 32, false],
    ['far too long', '2'.repeat(10_000), 32, false],
    ['a 64-byte signature', bs58.encode(Buffer.alloc(64, 200)), 64, true],
  ])('decodeBase58: %s', (_name, text, length, valid) => {
    const bytes = decodeBase58(text, length);
    expect(bytes !== undefined).toBe(valid);
    if (valid) expect(bs58.encode(bytes!)).toBe(text);
  });

  it('verifies a real ed25519 signature over the exact message, and nothing else', () => {
    const alice = keyPair();
    const mallory = keyPair();
    const message = challengeMessage({
      publicKey: bs58.encode(alice.publicKey),
      nonce: 'n1',
      issuedAt: new Date(0),
      expiresAt: new Date(300_000),
    });
    const signature = sign(null, Buffer.from(message), alice.privateKey);
    expect(verifyEd25519(alice.publicKey, message, signature)).toBe(true);
    expect(verifyEd25519(alice.publicKey, message + ' ', signature)).toBe(false);
    expect(verifyEd25519(mallory.publicKey, message, signature)).toBe(false);
    const flipped = Uint8Array.from(signature);
    flipped[10]! ^= 1;
    expect(verifyEd25519(alice.publicKey, message, flipped)).toBe(false);
    expect(verifyEd25519(alice.publicKey, message, signature.subarray(0, 63))).toBe(false);
  });

  it('the challenge message names the wallet, nonce and both instants', () => {
    expect(challengeMessage({ publicKey: 'PK', nonce: 'N', issuedAt: new Date(0), expiresAt: new Date(300_000) })).toBe(
      'Ovation sign-in\nwallet: PK\nnonce: N\nissued: 1970-01-01T00:00:00.000Z\nexpires: 1970-01-01T00:05:00.000Z',
    );
  });
});

describe('admission cache', () => {
  const row = { role: 'ADMIN', tokensValidAfter: null as Date | null, disabledAt: null as Date | null };
  const setup = (ttlMs = 60_000) => {
    // The users' batched statement (users.service.ts UserRecords): its first array parameter holds the ids.
    const idsOf = (values: unknown[]) => values.find(Array.isArray) as string[];
    const findMany = vi.fn(async (_sql: TemplateStringsArray, ...values: unknown[]) =>
      idsOf(values).map((id) => ({ ...row, id, name: 'U', createdAt: new Date(0) })),
    );
    const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
    const records = createUserRecords({ $queryRaw: findMany } as unknown as PrismaClient);
    const access = createUserAccess({ bus, readUser: records.admissionRow, ttlMs });
    const revoke = (change: UserAccessChange, userId = 'u1') =>
      bus.publish('user', USER_ACCESS_ALL, {
        topic: `user:${userId}`,
        seq: 1,
        publishedAt: new Date().toISOString(),
        data: { ...change, userId },
      });
    return { findMany, bus, access, revoke };
  };
  const viewer: Viewer = { id: 'u1', name: 'U', role: 'JUDGE', issuedAt: 1_000 };
  afterEach(() => {
    row.tokensValidAfter = null;
    row.disabledAt = null;
  });

  it('reads a user once, not per request; users arriving together in one query', async () => {
    const { findMany, access } = setup();
    for (let i = 0; i < 5; i += 1) await access.admit(viewer);
    expect(findMany).toHaveBeenCalledOnce();
    await Promise.all(['a', 'b', 'c'].map((id) => access.admit({ ...viewer, id })));
    expect(findMany).toHaveBeenCalledTimes(2);
    expect(findMany.mock.calls[1]!.slice(1).find(Array.isArray)).toEqual(['a', 'b', 'c']);
    expect(await access.admit(viewer)).toEqual(viewer); // not managed: the token's role stands
  });

  it('one access subscription however many users are cached or watched (not one per user)', async () => {
    const { bus, access } = setup();
    await Promise.all(Array.from({ length: 50 }, (_, i) => access.admit({ ...viewer, id: `voter-${i}` })));
    const stops = Array.from({ length: 20 }, (_, i) => access.watchUser({ ...viewer, id: `watcher-${i}` }, () => {}));
    await new Promise((r) => setTimeout(r, 0));
    expect(bus.size()).toBe(1);
    for (const stop of stops) stop();
  });

  it("an event on user:all drops that user's entry only; the next request sees the change", async () => {
    const { findMany, access, revoke } = setup();
    await access.admit(viewer);
    await access.admit({ ...viewer, id: 'u2' });
    revoke({ kind: 'updated' }, 'u2');
    await new Promise((r) => setTimeout(r, 0));
    await access.admit(viewer); // still cached
    expect(findMany).toHaveBeenCalledTimes(2);
    await access.admit({ ...viewer, id: 'u2' }); // dropped: read again
    expect(findMany).toHaveBeenCalledTimes(3);
  });

  it('an event on user:all drops the entry; the next request sees the change', async () => {
    const { findMany, access, revoke } = setup();
    await access.admit(viewer);
    row.tokensValidAfter = new Date(2_000_000);
    revoke({ kind: 'revoked', reason: 'ROLE_CHANGED', role: 'ADMIN' });
    await new Promise((r) => setTimeout(r, 0)); // the event is delivered asynchronously, like from Redis
    await expect(access.admit(viewer)).rejects.toThrow('token revoked');
    expect(await access.admit({ ...viewer, issuedAt: 2_000 })).toMatchObject({ role: 'ADMIN' }); // managed: the stored role wins
    expect(findMany).toHaveBeenCalledTimes(2);
  });

  it('a disabled user is refused whatever the token', async () => {
    const { access } = setup();
    row.disabledAt = new Date();
    await expect(access.admit({ ...viewer, issuedAt: now() })).rejects.toThrow('account disabled');
  });

  it('the TTL bounds how long a state is trusted without an event', async () => {
    const { findMany, access } = setup(0);
    await access.admit(viewer);
    await new Promise((r) => setTimeout(r, 5));
    await access.admit(viewer);
    expect(findMany).toHaveBeenCalledTimes(2);
  });

  it('watchUser ends on revocation, also when it happened before the watch was live', async () => {
    const { access, revoke } = setup();
    const reasons: string[] = [];
    access.watchUser(viewer, (reason) => reasons.push(reason.message));
    await new Promise((r) => setTimeout(r, 0));
    revoke({ kind: 'revoked', reason: 'DISABLED', role: 'JUDGE' });
    await vi.waitFor(() => expect(reasons).toEqual(['account disabled']));

    row.tokensValidAfter = new Date(2_000_000); // already revoked: the recheck after subscribing finds it
    access.invalidate('u1');
    const late: string[] = [];
    access.watchUser(viewer, (reason) => late.push(reason.message));
    await vi.waitFor(() => expect(late).toEqual(['token revoked']));
  });

  it('while the user subscription cannot go live (Redis away), waits at most liveWaitMs once, then reads uncached per request', async () => {
    const { findMany } = setup();
    let live!: () => void;
    const barrier = new Promise<void>((resolve) => (live = resolve));
    const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => barrier });
    const records = createUserRecords({ $queryRaw: findMany } as unknown as PrismaClient);
    const access = createUserAccess({ bus, readUser: records.admissionRow, liveWaitMs: 200 });
    const started = Date.now();
    expect(await access.admit(viewer)).toEqual(viewer);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    // Later requests neither wait again nor trust a cache that no event would drop.
    const again = Date.now();
    row.disabledAt = new Date();
    await expect(access.admit(viewer)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(Date.now() - again).toBeLessThan(150);
    expect(findMany).toHaveBeenCalledTimes(2);
    // Live again: cached as before.
    row.disabledAt = null;
    live();
    await access.admit(viewer);
    await access.admit(viewer);
    expect(findMany).toHaveBeenCalledTimes(3);
  });
});

describe('streamUntil', () => {
  function source<T>(values: T[], opts: { failAt?: number } = {}) {
    let i = 0;
    let released = false;
    let wake: ((r: IteratorResult<T>) => void) | undefined;
    const iterator: AsyncIterator<T> = {
      async next() {
        if (opts.failAt === i) throw new Error('source broke');
        if (i < values.length) return { value: values[i++]!, done: false };
        return new Promise((resolve) => (wake = resolve)); // then waits forever, like a live topic
      },
      async return() {
        released = true;
        wake?.({ value: undefined, done: true });
        return { value: undefined, done: true };
      },
    };
    return { iterator, released: () => released };
  }

  it('passes values until the ending, then yields its value, releases the source and completes', async () => {
    const s = source([1, 2]);
    let end!: (v: { value: number }) => void;
    const onDone = vi.fn();
    const stream = streamUntil(s.iterator, new Promise((r) => (end = r)), { onDone });
    expect(await stream.next()).toEqual({ value: 1, done: false });
    expect(await stream.next()).toEqual({ value: 2, done: false });
    const waiting = stream.next();
    end({ value: -1 });
    expect(await waiting).toEqual({ value: -1, done: false });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    await vi.waitFor(() => expect(s.released()).toBe(true));
    expect(onDone).toHaveBeenCalledOnce();
  });

  it('turns a source error into a last value with onSourceError', async () => {
    const s = source([1], { failAt: 1 });
    const stream = streamUntil(s.iterator, new Promise(() => undefined), {
      onSourceError: (e) => -(e as Error).message.length,
    });
    expect(await stream.next()).toEqual({ value: 1, done: false });
    expect(await stream.next()).toEqual({ value: -'source broke'.length, done: false });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  it('catchStreamErrors: a source error becomes a last value, return() releases the source', async () => {
    const failing = catchStreamErrors(source([1], { failAt: 1 }).iterator, () => -1);
    expect(await failing.next()).toEqual({ value: 1, done: false });
    expect(await failing.next()).toEqual({ value: -1, done: false });
    expect(await failing.next()).toEqual({ value: undefined, done: true });
    const s = source([1]);
    const live = catchStreamErrors(s.iterator, () => -1);
    await live.next();
    await live.return!();
    expect(s.released()).toBe(true);
  });

  it('return() releases the source and a pending next()', async () => {
    const s = source<number>([]);
    const onDone = vi.fn();
    const stream = streamUntil(s.iterator, new Promise(() => undefined), { onDone });
    const pending = stream.next();
    await stream.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(s.released()).toBe(true);
    expect(onDone).toHaveBeenCalledOnce();
  });

  it('runAt fires at the instant, and not after cancel', async () => {
    const fired: string[] = [];
    runAt(Date.now() + 20, () => fired.push('a'));
    const cancel = runAt(Date.now() + 20, () => fired.push('b'));
    cancel();
    runAt(Date.now() - 1_000, () => fired.push('past'));
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toEqual(['past', 'a']);
  });
});

describe('auth configuration', () => {
  it('defaults: no issuer/audience checks, 5 s tolerance, 30 s JWKS cooldown, exp required', () => {
    expect(loadConfig({})).toMatchObject({
      jwtIssuer: undefined,
      jwtAudience: undefined,
      jwtClockToleranceSeconds: 5,
      jwksCooldownMs: 30_000,
      jwksUrl: undefined,
      jwtRequireExp: true,
    });
  });

  it.each([
    [{}, true],
    [{ NODE_ENV: 'production' }, true],
    [{ JWT_REQUIRE_EXP: 'false' }, false], // NODE_ENV unset: development
    [{ NODE_ENV: 'development', JWT_REQUIRE_EXP: 'false' }, false],
    [{ NODE_ENV: 'test', JWT_REQUIRE_EXP: 'false' }, false],
    [{ NODE_ENV: 'production', JWT_REQUIRE_EXP: 'true' }, true],
  ])('JWT_REQUIRE_EXP with %o reads as %s', (env, expected) => {
    expect(loadConfig(env).jwtRequireExp).toBe(expected);
  });

  it('refuses JWT_REQUIRE_EXP=false with NODE_ENV=production, naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_REQUIRE_EXP: 'false' })).toThrow(
      /^Invalid configuration: JWT_REQUIRE_EXP must not be false with NODE_ENV=production/,
    );
  });

  it('reads JWT_ISSUER, JWT_AUDIENCE, JWT_CLOCK_TOLERANCE_SECONDS, JWKS_URL, JWKS_COOLDOWN_MS', () => {
    expect(
      loadConfig({
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_CLOCK_TOLERANCE_SECONDS: '0',
        JWKS_URL: 'https://idp.test/jwks.json',
        JWKS_COOLDOWN_MS: '100',
      }),
    ).toMatchObject({
      jwtIssuer: ISSUER,
      jwtAudience: AUDIENCE,
      jwtClockToleranceSeconds: 0,
      jwksUrl: 'https://idp.test/jwks.json',
      jwksCooldownMs: 100,
    });
  });

  it.each([
    ['JWT_CLOCK_TOLERANCE_SECONDS', '-1'],
    ['JWT_CLOCK_TOLERANCE_SECONDS', '5s'],
    ['JWKS_URL', 'ftp://idp.test/jwks'],
    ['JWT_REQUIRE_EXP', 'sometimes'],
  ])('refuses %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
