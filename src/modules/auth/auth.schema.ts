/**
 * Wallet sign-in (public) and user management (ADMIN). Token verification, revocation and the
 * stream guards are in src/guards (auth.ts, access.ts, streams.ts) and src/transport/ws.ts.
 */
import { builder } from '../../schema/builder.js';
import { RoleEnum, UserRef } from '../users/users.schema.js';
import type { SignInResult, WalletChallengeView } from './auth.service.js';

const WalletChallengeRef = builder.objectRef<WalletChallengeView>('WalletChallenge').implement({
  description:
    'A single-use sign-in challenge: sign `message` (its exact UTF-8 bytes) with the wallet key before `expiresAt`.',
  fields: (t) => ({
    nonce: t.exposeString('nonce'),
    message: t.exposeString('message'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

const SignInPayloadRef = builder.objectRef<SignInResult>('SignInPayload').implement({
  fields: (t) => ({
    token: t.exposeString('token', {
      description: 'A JWT for `Authorization: Bearer <token>` and graphql-ws connectionParams.',
    }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    user: t.field({ type: UserRef, resolve: (r) => r.user }),
  }),
});

builder.mutationFields((t) => ({
  walletChallenge: t.field({
    type: WalletChallengeRef,
    description:
      'Starts a wallet sign-in. publicKey: base58 ed25519 public key (Solana-style). Valid for 5 minutes, usable once.',
    guard: { rate: 'signIn' }, // anonymous: per client IP
    args: { publicKey: t.arg.string({ required: true }) },
    resolve: (_root, { publicKey }, ctx) => ctx.services.auth.walletChallenge(publicKey),
  }),
  walletSignIn: t.field({
    type: SignInPayloadRef,
    description: [
      "signature: base58 ed25519 signature of an open challenge's message by publicKey's wallet (nonce picks the challenge;",
      'without it, any open one of that key the signature is valid for). Consumes the challenge: a replay is UNAUTHENTICATED.',
      'Returns a token for the user bound to the wallet (created on first sign-in as AUDIENCE).',
    ].join(' '),
    args: {
      publicKey: t.arg.string({ required: true }),
      signature: t.arg.string({ required: true }),
      nonce: t.arg.string(),
    },
    guard: { rate: 'signIn' },
    resolve: (_root, args, ctx) => ctx.services.auth.walletSignIn(args),
  }),
  setUserRole: t.field({
    type: UserRef,
    description:
      "ADMIN. The stored role wins over the token's from now on; the user's earlier tokens and open connections end.",
    authScopes: { admin: true },
    guard: { rate: 'users' },
    args: { userId: t.arg.id({ required: true }), role: t.arg({ type: RoleEnum, required: true }) },
    resolve: (_root, { userId, role }, ctx) => ctx.services.auth.setUserRole(String(userId), role),
  }),
  disableUser: t.field({
    type: UserRef,
    description: 'ADMIN. Every token of the user is refused and their open connections end, until enableUser.',
    authScopes: { admin: true },
    guard: { rate: 'users' },
    args: { userId: t.arg.id({ required: true }) },
    resolve: (_root, { userId }, ctx) => ctx.services.auth.disableUser(ctx.viewer!.id, String(userId)),
  }),
  enableUser: t.field({
    type: UserRef,
    description: 'ADMIN. Lets a disabled user in again; tokens issued before the disable stay refused.',
    authScopes: { admin: true },
    guard: { rate: 'users' },
    args: { userId: t.arg.id({ required: true }) },
    resolve: (_root, { userId }, ctx) => ctx.services.auth.enableUser(String(userId)),
  }),
}));
