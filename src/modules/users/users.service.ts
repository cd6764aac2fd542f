import type { PrismaClient, User } from '../../generated/prisma/client.js';
import type { Viewer } from '../../guards/auth.js';

/** Known (id → "name|role") pairs, so steady traffic does not upsert on every request. */
const SEEN_CACHE_LIMIT = 50_000;

export interface UsersService {
  /** Creates the user on first sight of its sub, and follows name/role changes in the token. */
  ensureUser(viewer: Viewer): Promise<void>;
  byId(id: string): Promise<User | null>;
}

export function createUsersService(deps: { prisma: PrismaClient }): UsersService {
  const { prisma } = deps;
  const seen = new Map<string, string>();
  const inFlight = new Map<string, Promise<void>>();

  return {
    async ensureUser(viewer) {
      const fingerprint = `${viewer.name}|${viewer.role}`;
      if (seen.get(viewer.id) === fingerprint) return;
      const key = `${viewer.id}|${fingerprint}`;
      let pending = inFlight.get(key);
      if (!pending) {
        pending = prisma.user
          .upsert({
            where: { id: viewer.id },
            create: { id: viewer.id, name: viewer.name, role: viewer.role },
            update: { name: viewer.name, role: viewer.role },
          })
          .then(() => {
            if (seen.size >= SEEN_CACHE_LIMIT) seen.delete(seen.keys().next().value as string);
            seen.set(viewer.id, fingerprint);
          })
          .finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      await pending;
    },
    byId(id) {
      return prisma.user.findUnique({ where: { id } });
    },
  };
}
