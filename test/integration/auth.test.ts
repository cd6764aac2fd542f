/**
 * Authentication through the running app: RS256/ES256 tokens from a local JWKS server (with key
 * rotation), wallet sign-in with real ed25519 keys (replay, concurrency, bad input), and
 * revocation (role change, disable) that refuses old tokens and ends open graphql-ws connections
 * (4403) and SSE streams (final UNAUTHENTICATED), also across two instances on PostgreSQL + Redis;
 * tokens without exp, refused on every transport unless JWT_REQUIRE_EXP=false.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import bs58 from 'bs58';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateCompetitionDocument,
  DisableUserDocument,
  EnableUserDocument,
  SetUserRoleDocument,
  TallyUpdatedDocument,
  WalletChallengeDocument,
  WalletSignInDocument,
  WhoAmIDocument,
} from '../generated/graphql.js';
import { startTestApp, useTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { TEST_JWT_SECRET, codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';
import { rawSocket } from '../support/raw-ws.js';

type Gql = <R, V>(
  doc: Parameters<typeof execute<R, V>>[2],
  variables: V,
  token?: string,
) => ReturnType<typeof execute<R, V>>;
const gqlOn =
  (t: Pick<TestApp, 'graphqlUrl'>): Gql =>
  (doc, variables, token) =>
    execute(fetch, t.graphqlUrl, doc, variables, token);
const messageOf = (result: { errors?: readonly { message: string }[] | undefined }) => result.errors?.[0]?.message;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An HS256 token as an identity provider would have issued it `ageSeconds` ago. */
function issuedAgo(claims: { sub: string; role?: string; name?: string }, ageSeconds: number): Promise<string> {
  return new SignJWT({ role: claims.role ?? 'AUDIENCE', name: claims.name ?? claims.sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt(nowSeconds() - ageSeconds)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

// ------------------------------------------------------------------------------------------ JWKS

describe('RS256/ES256 tokens from JWKS_URL', () => {
  const ISSUER = 'https://idp.example';
  const AUDIENCE = 'ovation-api';
  let jwksServer: Server;
  let published: JWK[] = [];
  let fetches = 0;
  let t: TestApp;
  const keys = new Map<string, CryptoKey>();

  async function addKey(kid: string, alg: 'RS256' | 'ES256'): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    keys.set(kid, privateKey);
    published = [...published, { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }];
  }
  const idpToken = (
    kid: string,
    alg: string,
    claims: { sub: string; role?: string },
    build = (j: SignJWT) => j.setIssuer(ISSUER).setAudience(AUDIENCE),
  ) =>
    build(
      new SignJWT({ role: claims.role ?? 'AUDIENCE', name: `IdP ${claims.sub}` })
        .setProtectedHeader({ alg, kid })
        .setSubject(claims.sub),
    )
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(keys.get(kid)!);

  beforeAll(async () => {
    await addKey('rsa-1', 'RS256');
    await addKey('ec-1', 'ES256');
    jwksServer = createServer((req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as AddressInfo;
    t = await startTestApp(
      {
        JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        JWKS_COOLDOWN_MS: '0',
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
      },
      { postgres: true },
    );
  });
  afterAll(async () => {
    await t?.stop();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  it.each([
    ['RS256', 'rsa-1'],
    ['ES256', 'ec-1'],
  ])('accepts %s tokens whose kid is in the set', async (alg, kid) => {
    const me = dataOf(
      await gqlOn(t)(WhoAmIDocument, {}, await idpToken(kid, alg, { sub: `idp-${alg}`, role: 'JUDGE' })),
    ).me;
    expect(me).toEqual({ id: `idp-${alg}`, name: `IdP idp-${alg}`, role: 'JUDGE' });
  });

  it('caches the set: known keys cause no fetch', async () => {
    const before = fetches;
    for (let i = 0; i < 3; i += 1)
      dataOf(await gqlOn(t)(WhoAmIDocument, {}, await idpToken('rsa-1', 'RS256', { sub: 'cached' })));
    expect(fetches).toBe(before);
  });

  it('rotation: a new kid is accepted after one refetch; a key dropped from the set stops working', async () => {
    await addKey('rsa-2', 'RS256');
    const before = fetches;
    const rotated = await idpToken('rsa-2', 'RS256', { sub: 'rotated' });
    expect(dataOf(await gqlOn(t)(WhoAmIDocument, {}, rotated)).me?.id).toBe('rotated');
    expect(fetches).toBe(before + 1);

    published = published.filter((k) => k.kid !== 'ec-1');
    await addKey('ec-2', 'ES256'); // the refetch for ec-2 also learns that ec-1 is gone
    expect(dataOf(await gqlOn(t)(WhoAmIDocument, {}, await idpToken('ec-2', 'ES256', { sub: 'ec2' }))).me?.id).toBe(
      'ec2',
    );
    const retired = await gqlOn(t)(WhoAmIDocument, {}, await idpToken('ec-1', 'ES256', { sub: 'retired' }));
    expect(codesOf(retired)).toEqual(['UNAUTHENTICATED']);
    expect(messageOf(retired)).toBe('no JWKS key matches the token (kid, alg)');
  });

  it.each([
    [
      'another issuer',
      (j: SignJWT) => j.setIssuer('https://evil.example').setAudience(AUDIENCE),
      'token claim iss is not accepted',
    ],
    [
      'another audience',
      (j: SignJWT) => j.setIssuer(ISSUER).setAudience('someone-else'),
      'token claim aud is not accepted',
    ],
  ])('refuses %s', async (_name, build, message) => {
    const result = await gqlOn(t)(WhoAmIDocument, {}, await idpToken('rsa-1', 'RS256', { sub: 'x' }, build));
    expect(codesOf(result)).toEqual(['UNAUTHENTICATED']);
    expect(messageOf(result)).toBe(message);
  });

  it('HS256 tokens keep working beside JWKS, with the configured issuer and audience', async () => {
    const plain = await tokenFor({ sub: 'hs-user' });
    expect(messageOf(await gqlOn(t)(WhoAmIDocument, {}, plain))).toBe('token claim iss is not accepted');
    const hs = await new SignJWT({ role: 'ADMIN' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('hs-user')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(dataOf(await gqlOn(t)(WhoAmIDocument, {}, hs)).me).toMatchObject({ id: 'hs-user', role: 'ADMIN' });
  });
});

// --------------------------------------------------------------------------- wallet, revocation

function wallet(): { publicKey: string; privateKey: KeyObject; sign(message: string): string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return {
    publicKey: bs58.encode(raw),
    privateKey,
    sign: (message) => bs58.encode(sign(null, Buffer.from(message, 'utf8'), privateKey)),
  };
}

describe.each(backends)('wallet sign-in and revocation on $name', (backend) => {
  const t = useTestApp(backend);
  const gql: Gql = (doc, variables, token) => t.gql(doc, variables, token);
  let admin: string;

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'auth-admin', name: 'Ada', role: 'ADMIN' });
  });

  it('signs in with a real ed25519 signature; the token works; a replay is refused', async () => {
    const w = wallet();
    const challenge = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    expect(challenge.message).toContain(`nonce: ${challenge.nonce}`);
    expect(challenge.message).toContain(`wallet: ${w.publicKey}`);
    expect(bs58.decode(challenge.nonce)).toHaveLength(32);
    expect(Date.parse(challenge.expiresAt) - Date.now()).toBeGreaterThan(4 * 60_000);

    const signature = w.sign(challenge.message);
    const { walletSignIn } = dataOf(await gql(WalletSignInDocument, { publicKey: w.publicKey, signature }, undefined));
    expect(walletSignIn.user).toMatchObject({ id: `wallet:${w.publicKey}`, role: 'AUDIENCE' });
    expect(dataOf(await gql(WhoAmIDocument, {}, walletSignIn.token)).me?.id).toBe(`wallet:${w.publicKey}`);

    const replay = await gql(WalletSignInDocument, { publicKey: w.publicKey, signature }, undefined);
    expect(codesOf(replay)).toEqual(['UNAUTHENTICATED']);

    // A second sign-in (new challenge) is the same user.
    const again = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    const second = dataOf(
      await gql(
        WalletSignInDocument,
        { publicKey: w.publicKey, signature: w.sign(again.message), nonce: again.nonce },
        undefined,
      ),
    );
    expect(second.walletSignIn.user.id).toBe(walletSignIn.user.id);
  });

  it('of concurrent sign-ins with one signed challenge, exactly one gets a token', async () => {
    const w = wallet();
    const challenge = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    const signature = w.sign(challenge.message);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => gql(WalletSignInDocument, { publicKey: w.publicKey, signature }, undefined)),
    );
    expect(results.filter((r) => r.data?.walletSignIn.token)).toHaveLength(1);
    expect(results.flatMap(codesOf).sort()).toEqual(Array(7).fill('UNAUTHENTICATED'));
  });

  it('a signature over an older open challenge still works; each works once', async () => {
    const w = wallet();
    const first = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    const second = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    dataOf(await gql(WalletSignInDocument, { publicKey: w.publicKey, signature: w.sign(first.message) }, undefined));
    dataOf(await gql(WalletSignInDocument, { publicKey: w.publicKey, signature: w.sign(second.message) }, undefined));
    expect(
      codesOf(await gql(WalletSignInDocument, { publicKey: w.publicKey, signature: w.sign(first.message) }, undefined)),
    ).toEqual(['UNAUTHENTICATED']);
  });

  it.each([
    [
      'a public key that is not base58',
      () => ({ publicKey: 'not-base58-0OIl', signature: bs58.encode(Buffer.alloc(64)) }),
      'BAD_USER_INPUT',
      'publicKey',
    ],
    [
      'a 31-byte public key',
      () => ({ publicKey: bs58.encode(Buffer.alloc(31, 1)), signature: bs58.encode(Buffer.alloc(64)) }),
      'BAD_USER_INPUT',
      'publicKey',
    ],
    [
      'a 63-byte signature',
      () => ({ publicKey: wallet().publicKey, signature: bs58.encode(Buffer.alloc(63, 1)) }),
      'BAD_USER_INPUT',
      'signature',
    ],
    [
      'no challenge for the key',
      () => ({ publicKey: wallet().publicKey, signature: bs58.encode(Buffer.alloc(64, 1)) }),
      'UNAUTHENTICATED',
      undefined,
    ],
  ])('refuses %s', async (_name, input, code, field) => {
    const result = await gql(WalletSignInDocument, input(), undefined);
    expect(codesOf(result)).toEqual([code]);
    expect(result.errors?.[0]?.extensions?.['field']).toBe(field);
  });

  it('refuses a signature by another key, and an expired challenge', async () => {
    const w = wallet();
    const mallory = wallet();
    const challenge = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    expect(
      codesOf(
        await gql(
          WalletSignInDocument,
          { publicKey: w.publicKey, signature: mallory.sign(challenge.message) },
          undefined,
        ),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    await t.app.database.prisma.walletChallenge.update({
      where: { nonce: challenge.nonce },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect(
      codesOf(
        await gql(WalletSignInDocument, { publicKey: w.publicKey, signature: w.sign(challenge.message) }, undefined),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(WalletChallengeDocument, { publicKey: 'x' }, undefined))).toEqual(['BAD_USER_INPUT']);
  });

  it('setUserRole: ADMIN only; old tokens die; the stored role wins over a new token’s claim', async () => {
    const old = await issuedAgo({ sub: 'promoted', role: 'AUDIENCE' }, 10);
    dataOf(await gql(WhoAmIDocument, {}, old)); // seen once: cached as AUDIENCE
    const judge = await tokenFor({ sub: 'some-judge', role: 'JUDGE' });
    expect(codesOf(await gql(SetUserRoleDocument, { userId: 'promoted', role: 'JUDGE' }, judge))).toEqual([
      'FORBIDDEN',
    ]);
    expect(codesOf(await gql(SetUserRoleDocument, { userId: 'promoted', role: 'JUDGE' }, undefined))).toEqual([
      'UNAUTHENTICATED',
    ]);
    expect(codesOf(await gql(SetUserRoleDocument, { userId: 'nobody-here', role: 'JUDGE' }, admin))).toEqual([
      'NOT_FOUND',
    ]);

    expect(dataOf(await gql(SetUserRoleDocument, { userId: 'promoted', role: 'JUDGE' }, admin)).setUserRole).toEqual({
      id: 'promoted',
      role: 'JUDGE',
    });
    const refused = await gql(WhoAmIDocument, {}, old);
    expect(codesOf(refused)).toEqual(['UNAUTHENTICATED']);
    expect(messageOf(refused)).toBe('token revoked');
    // The identity provider still says AUDIENCE; the server-side role is JUDGE now, and stays.
    const fresh = await tokenFor({ sub: 'promoted', role: 'AUDIENCE' });
    expect(dataOf(await gql(WhoAmIDocument, {}, fresh)).me?.role).toBe('JUDGE');
    expect((await t.app.database.prisma.user.findUnique({ where: { id: 'promoted' } }))?.role).toBe('JUDGE');
  });

  it('disableUser refuses every token until enableUser; an ADMIN cannot disable themselves', async () => {
    const old = await issuedAgo({ sub: 'troll' }, 10);
    dataOf(await gql(WhoAmIDocument, {}, old));
    expect(codesOf(await gql(DisableUserDocument, { userId: 'auth-admin' }, admin))).toEqual(['BAD_USER_INPUT']);
    dataOf(await gql(DisableUserDocument, { userId: 'troll' }, admin));
    for (const token of [old, await tokenFor({ sub: 'troll' })]) {
      const refused = await gql(WhoAmIDocument, {}, token);
      expect(messageOf(refused)).toBe('account disabled');
    }
    dataOf(await gql(EnableUserDocument, { userId: 'troll' }, admin));
    expect(messageOf(await gql(WhoAmIDocument, {}, old))).toBe('token revoked');
    expect(dataOf(await gql(WhoAmIDocument, {}, await tokenFor({ sub: 'troll' }))).me?.id).toBe('troll');
  });

  it('a disabled wallet cannot sign in', async () => {
    const w = wallet();
    const first = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    const { walletSignIn } = dataOf(
      await gql(WalletSignInDocument, { publicKey: w.publicKey, signature: w.sign(first.message) }, undefined),
    );
    dataOf(await gql(DisableUserDocument, { userId: walletSignIn.user.id }, admin));
    const next = dataOf(await gql(WalletChallengeDocument, { publicKey: w.publicKey }, undefined)).walletChallenge;
    const refused = await gql(
      WalletSignInDocument,
      { publicKey: w.publicKey, signature: w.sign(next.message) },
      undefined,
    );
    expect(messageOf(refused)).toBe('account disabled');
  });

  it('a role change on one instance refuses old tokens and ends graphql-ws connections (4403) and SSE streams on another', async () => {
    // Two instances on PostgreSQL + Redis; on the embedded backend the same one twice.
    const second = t.backendEnv['REDIS_URL'] ? await startTestApp(t.backendEnv) : undefined;
    const other = second ?? t;
    try {
      const { createCompetition } = dataOf(
        await gql(CreateCompetitionDocument, { input: { title: 'Revocation', votingMethod: 'SIMPLE' } }, admin),
      );
      const userId = 'demoted-admin';
      const old = await issuedAgo({ sub: userId, role: 'ADMIN' }, 10);
      dataOf(await gqlOn(other)(WhoAmIDocument, {}, old)); // the other instance has it cached

      let closed: { code: number; reason: string } | undefined;
      const client = createClient({
        url: other.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${old}` },
        retryAttempts: 0,
        on: {
          closed: (event) =>
            (closed = { code: (event as { code: number }).code, reason: (event as { reason: string }).reason }),
        },
      });
      const wsResults: unknown[] = [];
      const wsDone = new Promise<void>((resolve) => {
        client.subscribe(
          { query: print(TallyUpdatedDocument), variables: { competitionId: createCompetition.id } },
          { next: (r) => void wsResults.push(r), error: () => resolve(), complete: () => resolve() },
        );
      });
      const sse = subscribe('sse', other.url, TallyUpdatedDocument, { competitionId: createCompetition.id }, old);
      await sse.waitFor((r) => r.data?.tallyUpdated != null);
      await expect.poll(() => wsResults.length).toBe(1);

      dataOf(await gql(SetUserRoleDocument, { userId, role: 'AUDIENCE' }, admin));
      await wsDone;
      expect(closed).toEqual({ code: 4403, reason: 'token revoked: role changed' });
      await sse.ended;
      expect(sse.results.at(-1)?.errors?.[0]).toMatchObject({
        message: 'token revoked: role changed',
        extensions: { code: 'UNAUTHENTICATED', retryable: false },
      });
      // No TTL wait on the other instance: the event dropped its cached state.
      expect(messageOf(await gqlOn(other)(WhoAmIDocument, {}, old))).toBe('token revoked');
      await client.dispose();
      // Reconnecting with the old token: refused at connection_init, with the reason.
      const socket = new WebSocket(other.wsUrl, 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${old}` } })),
      );
      const [code, reason] = await new Promise<[number, string]>((resolve) =>
        socket.once('close', (c, r) => resolve([c, String(r)])),
      );
      expect([code, reason]).toEqual([4403, 'token revoked']);
    } finally {
      await second?.stop();
    }
  });
});

// ----------------------------------------------------------------------------- tokens without exp

describe('tokens without exp', () => {
  const NO_EXP =
    'token has no exp claim; tokens must expire (JWT_REQUIRE_EXP=false accepts them, for development only)';
  let strict: TestApp;
  let relaxed: TestApp;

  /** A token that never expires, as an identity provider that sets no `exp` would sign it. */
  const forever = (sub: string) =>
    new SignJWT({ role: 'AUDIENCE', name: sub })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuedAt()
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  const connectionInit = (t: TestApp, token: string) => {
    const ws = rawSocket(t.wsUrl);
    ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    return ws;
  };
  const graphqlSseStream = async (t: TestApp, token: string) => {
    const reservation = await (await fetch(`${t.url}/graphql/stream`, { method: 'PUT' })).text();
    const abort = new AbortController();
    const response = await fetch(`${t.url}/graphql/stream`, {
      headers: {
        accept: 'text/event-stream',
        'x-graphql-event-stream-token': reservation,
        authorization: `Bearer ${token}`,
      },
      signal: abort.signal,
    });
    return { response, close: () => abort.abort() };
  };

  beforeAll(async () => {
    [strict, relaxed] = await Promise.all([
      startTestApp({}, { postgres: true }),
      startTestApp({ JWT_REQUIRE_EXP: 'false' }, { postgres: true }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([strict?.stop(), relaxed?.stop()]);
  });

  it('are refused with UNAUTHENTICATED on every transport by default', async () => {
    const token = await forever('no-exp');
    const http = await gqlOn(strict)(WhoAmIDocument, {}, token);
    expect(codesOf(http)).toEqual(['UNAUTHENTICATED']);
    expect(messageOf(http)).toBe(NO_EXP);

    const sse = await fetch(strict.graphqlUrl, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'subscription { notificationAdded { id } }' }),
    });
    const sseText = await sse.text();
    expect(sseText).toContain(NO_EXP);
    expect(sseText).toContain('"code":"UNAUTHENTICATED"');

    expect(await connectionInit(strict, token).closed).toEqual({ code: 4403, reason: NO_EXP });

    const stream = await graphqlSseStream(strict, token);
    expect(stream.response.status).toBe(401);
    expect(((await stream.response.json()) as { errors: { message: string }[] }).errors[0]!.message).toBe(NO_EXP);
  });

  it('JWT_REQUIRE_EXP=false accepts them (development): a viewer that never expires', async () => {
    const token = await forever('no-exp-dev');
    expect(dataOf(await gqlOn(relaxed)(WhoAmIDocument, {}, token)).me).toMatchObject({ id: 'no-exp-dev' });
    const ws = connectionInit(relaxed, token);
    expect(await ws.next((m) => m.type === 'connection_ack')).toMatchObject({ type: 'connection_ack' });
    ws.close();
    const stream = await graphqlSseStream(relaxed, token);
    expect(stream.response.status).toBe(200);
    stream.close();
  });
});
