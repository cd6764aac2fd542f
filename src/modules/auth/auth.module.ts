/**
 * Sign-in (wallet, ADMIN user management) with what every transport authenticates through:
 * tokens (guards/auth.ts), revocation and server-side roles (guards/access.ts). README "Auth flows".
 */
import { createRemoteJWKSet } from 'jose';
import { createUserAccess, type UserAccess } from '../../guards/access.js';
import { createAuthenticator, createTokenIssuer, resolveJwtSecret, type Authenticator } from '../../guards/auth.js';
import type { Module, ModuleContext } from '../module.js';
import type { UserRecords } from '../users/users.service.js';
import { createAuthService, type AuthService } from './auth.service.js';

export interface AuthModule extends Module<AuthService> {
  readonly access: UserAccess;
  readonly authenticator: Authenticator;
}

export async function createAuthModule(ctx: ModuleContext, deps: { records: UserRecords }): Promise<AuthModule> {
  const { config, logger, prisma, bus } = ctx;
  const secret = await resolveJwtSecret(config);
  const issuer = { issuer: config.jwtIssuer, audience: config.jwtAudience };
  const access = createUserAccess({
    bus,
    readUser: deps.records.admissionRow,
    onError: (message, details) => logger.error(message, details),
  });
  const authenticator = createAuthenticator({
    secret,
    ...issuer,
    // Cached; an unknown kid refetches (once per cooldown); a fetch gives up after the timeout.
    jwks: config.jwksUrl
      ? createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: config.jwksCooldownMs, timeoutDuration: 5_000 })
      : undefined,
    clockToleranceSeconds: config.jwtClockToleranceSeconds,
    requireExp: config.jwtRequireExp,
    admit: (viewer) => access.admit(viewer),
  });
  return {
    service: createAuthService({ prisma, bus, access, issueToken: createTokenIssuer(secret, issuer) }),
    access,
    authenticator,
  };
}
