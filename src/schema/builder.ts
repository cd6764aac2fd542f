/** The Pothos builder and its plugins. Defines no types: those live in the domain modules. */
import SchemaBuilder from '@pothos/core';
import PrismaPlugin from '@pothos/plugin-prisma';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import StreamCursorsPlugin from './stream-cursors.plugin.js';
import DeliveryPlugin from './delivery-plugin.js';
import GuardPlugin from './guard-plugin.js';
import type { Context } from '../context.js';
import type PrismaTypes from '../generated/pothos-prisma-types.js';
import { getDatamodel } from '../generated/pothos-prisma-types.js';
import { Role } from '../generated/prisma/enums.js';
import { forbidden, unauthenticated } from '../errors.js';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: { authenticated: boolean; admin: boolean };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
}>({
  // Order matters: the first plugin wraps outermost, so scope-auth decides before the guards run
  // (auth → rate → fraud → resolver, see guard-plugin.ts).
  plugins: [ScopeAuthPlugin, GuardPlugin, PrismaPlugin, StreamCursorsPlugin, DeliveryPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    // Subscriptions are checked when they start, not only on each event.
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      authenticated: ctx.viewer !== null,
      admin: ctx.viewer?.role === Role.ADMIN,
    }),
    unauthorizedError: (_parent, ctx, info) =>
      ctx.viewer === null
        ? unauthenticated()
        : forbidden(`${info.parentType.name}.${info.fieldName} requires another role`),
  },
  // Every mutation's `guard: { rate, fraud }` (guard-plugin.ts), run by the pipeline in src/guards/guards.ts.
  guards: { run: (ctx, spec) => ctx.services.guards.run(ctx, spec) },
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    onUnusedQuery: null,
  },
});
