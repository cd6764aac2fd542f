import type { ObjectRef } from '@pothos/core';
import { Role } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import type { UserView } from './users.service.js';

export const RoleEnum = builder.enumType(Role, { name: 'Role' });

export const UserRef = builder.prismaObject('User', {
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    role: t.expose('role', { type: RoleEnum }),
  }),
});

type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;
/**
 * The User type for fields that resolve to a UserView (an offer's judge, a message's author, …)
 * instead of a Prisma row. The one cast of its kind: User's fields read only id, name and role,
 * which a UserView has.
 */
export const UserViewRef = UserRef as unknown as ObjectRef<BuilderTypes, UserView>;

builder.queryField('me', (t) =>
  t.prismaField({
    type: 'User',
    nullable: true,
    description: 'The signed-in user; null for anonymous callers.',
    resolve: (query, _root, _args, ctx) =>
      ctx.viewer ? ctx.prisma.user.findUnique({ ...query, where: { id: ctx.viewer.id } }) : null,
  }),
);
