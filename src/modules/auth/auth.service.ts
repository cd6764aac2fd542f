/**
 * Wallet sign-in and ADMIN user management.
 *
 * Wallet: `challenge(publicKey)` stores a single-use random nonce inside a message to sign, valid
 * for 5 minutes; `signIn(publicKey, signature)` finds the key's open challenge the signature is
 * valid for, consumes it with one conditional UPDATE (so of any number of concurrent sign-ins with
 * it exactly one wins, and a replay finds nothing), then finds or creates the user bound to the
 * wallet (id `wallet:<publicKey>`, AUDIENCE) and returns a token for it.
 *
 * Management: setUserRole and disableUser make the stored role authoritative and end the user's
 * existing tokens (tokensValidAfter = now) and live connections (a `revoked` event on
 * `user:all`, see auth.events.ts); enableUser lets the user sign in again (with new tokens).
 */
import { randomBytes } from 'node:crypto';
import type { Prisma, PrismaClient, User } from '../../generated/prisma/client.js';
import { Role } from '../../generated/prisma/enums.js';
import { badInput, notFound, unauthenticated } from '../../errors.js';
import type { UserAccess } from '../../guards/access.js';
import type { IssueToken } from '../../guards/auth.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { USER_ACCESS_ALL, userAccessEvent, type UserAccessChange } from './auth.events.js';
import {
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  challengeMessage,
  decodeBase58,
  encodeBase58,
  verifyEd25519,
} from './auth.rules.js';

export interface WalletChallengeView {
  nonce: string;
  message: string;
  expiresAt: Date;
}

export interface SignInResult {
  token: string;
  expiresAt: Date;
  user: User;
}

export interface AuthService {
  walletChallenge(publicKey: string): Promise<WalletChallengeView>;
  /** `nonce` picks the challenge; without it, the key's open challenge the signature is valid for. */
  walletSignIn(input: { publicKey: string; signature: string; nonce?: string | null }): Promise<SignInResult>;
  setUserRole(userId: string, role: Role): Promise<User>;
  /** `actorId`: the ADMIN doing it, who cannot lock themselves out. */
  disableUser(actorId: string, userId: string): Promise<User>;
  enableUser(userId: string): Promise<User>;
}

const CHALLENGE_TTL_MS = 5 * 60_000;
const NONCE_BYTES = 32;
/** Open challenges kept per key: older ones are dropped when a new one is made. */
const OPEN_CHALLENGES_PER_KEY = 5;
const WALLET_TOKEN_TTL_SECONDS = 12 * 3600;

export const walletUserId = (publicKey: string): string => `wallet:${publicKey}`;

function publicKeyBytes(publicKey: string): Uint8Array {
  const bytes = decodeBase58(publicKey, PUBLIC_KEY_BYTES);
  if (!bytes) throw badInput('publicKey', `publicKey must be a base58 ed25519 public key (${PUBLIC_KEY_BYTES} bytes)`);
  return bytes;
}

/** Whole seconds, like a token's `iat`: tokens issued from this second on stay valid. */
const thisSecond = (): Date => new Date(Math.floor(Date.now() / 1000) * 1000);

export function createAuthService(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  access: UserAccess;
  issueToken: IssueToken;
}): AuthService {
  const { prisma, bus, access, issueToken } = deps;

  async function findOrCreateWalletUser(tx: Prisma.TransactionClient, publicKey: string): Promise<User> {
    const bound = await tx.user.findUnique({ where: { walletPublicKey: publicKey } });
    if (bound) return bound;
    const id = walletUserId(publicKey);
    const now = new Date();
    // Concurrent first sign-ins of one wallet meet on the primary key: one inserts, the others find it.
    await tx.$executeRaw`
      INSERT INTO "User" ("id", "name", "role", "walletPublicKey", "createdAt", "updatedAt")
      VALUES (${id}, ${`${publicKey.slice(0, 4)}…${publicKey.slice(-4)}`}, ${Role.AUDIENCE}::"Role", ${publicKey}, ${now}, ${now})
      ON CONFLICT ("id") DO UPDATE SET "walletPublicKey" = EXCLUDED."walletPublicKey"
      WHERE "User"."walletPublicKey" IS NULL`;
    return tx.user.findUniqueOrThrow({ where: { id } });
  }

  /** Updates the user, makes their stored role authoritative, and ends their tokens and connections. */
  async function manage(
    userId: string,
    data: { role?: Role; disabledAt?: Date | null },
    change: (user: User) => UserAccessChange,
  ): Promise<User> {
    const { user, event } = await prisma.$transaction(async (tx) => {
      const revokes = data.role !== undefined || data.disabledAt instanceof Date;
      const { count } = await tx.user.updateMany({
        where: { id: userId },
        data: { ...data, ...(revokes && { tokensValidAfter: thisSecond() }) },
      });
      if (count === 0) throw notFound('User', userId);
      const user = await tx.user.findUniqueOrThrow({ where: { id: userId } });
      return { user, event: await userAccessEvent(tx, userId, change(user)) };
    });
    access.invalidate(userId);
    bus.publish('user', USER_ACCESS_ALL, event);
    return user;
  }

  return {
    async walletChallenge(publicKey) {
      publicKeyBytes(publicKey);
      const nonce = encodeBase58(randomBytes(NONCE_BYTES));
      const issuedAt = new Date();
      const expiresAt = new Date(issuedAt.getTime() + CHALLENGE_TTL_MS);
      const message = challengeMessage({ publicKey, nonce, issuedAt, expiresAt });
      await prisma.$transaction(async (tx) => {
        await tx.walletChallenge.create({ data: { nonce, publicKey, message, expiresAt, createdAt: issuedAt } });
        const keep = await tx.walletChallenge.findMany({
          where: { publicKey, usedAt: null, expiresAt: { gt: issuedAt } },
          orderBy: [{ createdAt: 'desc' }, { nonce: 'asc' }],
          take: OPEN_CHALLENGES_PER_KEY,
          select: { nonce: true },
        });
        await tx.walletChallenge.deleteMany({ where: { publicKey, nonce: { notIn: keep.map((c) => c.nonce) } } });
      });
      return { nonce, message, expiresAt };
    },

    async walletSignIn({ publicKey, signature, nonce }) {
      const key = publicKeyBytes(publicKey);
      const sig = decodeBase58(signature, SIGNATURE_BYTES);
      if (!sig) throw badInput('signature', `signature must be a base58 ed25519 signature (${SIGNATURE_BYTES} bytes)`);
      const now = new Date();
      const open = await prisma.walletChallenge.findMany({
        where: { publicKey, usedAt: null, expiresAt: { gt: now }, ...(nonce != null && { nonce }) },
        orderBy: { createdAt: 'desc' },
        take: OPEN_CHALLENGES_PER_KEY,
      });
      const signed = open.find((c) => verifyEd25519(key, c.message, sig));
      if (!signed)
        throw unauthenticated('the signature matches no open challenge of this wallet (ask for a new walletChallenge)');

      const user = await prisma.$transaction(async (tx) => {
        // The one conditional write that makes a challenge single-use, also under concurrency.
        const { count } = await tx.walletChallenge.updateMany({
          where: { nonce: signed.nonce, usedAt: null, expiresAt: { gt: now } },
          data: { usedAt: now },
        });
        if (count !== 1) throw unauthenticated('this challenge was already used (ask for a new walletChallenge)');
        return findOrCreateWalletUser(tx, publicKey);
      });
      if (user.disabledAt) throw unauthenticated('account disabled');
      const { token, expiresAt } = await issueToken(
        { sub: user.id, name: user.name, role: user.role },
        WALLET_TOKEN_TTL_SECONDS,
      );
      return { token, expiresAt, user };
    },

    setUserRole: (userId, role) =>
      manage(userId, { role }, (user) => ({ kind: 'revoked', reason: 'ROLE_CHANGED', role: user.role })),
    async disableUser(actorId, userId) {
      if (actorId === userId) throw badInput('userId', 'an ADMIN cannot disable themselves');
      return manage(userId, { disabledAt: new Date() }, (user) => ({
        kind: 'revoked',
        reason: 'DISABLED',
        role: user.role,
      }));
    },
    enableUser: (userId) => manage(userId, { disabledAt: null }, () => ({ kind: 'updated' })),
  };
}
