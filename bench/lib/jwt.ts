/**
 * HS256 JWTs signed with node:crypto directly (a few µs each, vs tens of µs through jose's
 * WebCrypto path), so the load generator can mint one token per vote without stealing CPU from
 * the server on a 2-core machine. Same claims as src/guards/auth.ts signToken: sub, name, role,
 * iat, exp. `selfTest` checks the output against jose's verifier once per run.
 */
import { createHmac } from 'node:crypto';
import { jwtVerify } from 'jose';

export type Role = 'AUDIENCE' | 'FOUNDER' | 'JUDGE' | 'ADMIN';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

export function signHs256(
  secret: string,
  claims: { sub: string; name?: string; role?: Role },
  ttlSeconds = 3600,
): string {
  const iat = Math.floor(Date.now() / 1000);
  const payload = Buffer.from(
    JSON.stringify({
      name: claims.name ?? claims.sub,
      role: claims.role ?? 'AUDIENCE',
      sub: claims.sub,
      iat,
      exp: iat + ttlSeconds,
    }),
  ).toString('base64url');
  const data = `${HEADER}.${payload}`;
  const sig = createHmac('sha256', secret).update(data).digest('base64url');
  return `${data}.${sig}`;
}

export async function selfTest(secret: string): Promise<void> {
  const token = signHs256(secret, { sub: 'self-test', role: 'ADMIN' });
  const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] });
  if (payload.sub !== 'self-test' || payload['role'] !== 'ADMIN') throw new Error('bench JWT signer self-test failed');
}
