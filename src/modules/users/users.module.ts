import type { Module, ModuleContext } from '../module.js';
import { createUserRecords, createUsersService, type UserRecords, type UsersService } from './users.service.js';

export interface UsersModule extends Module<UsersService> {
  /**
   * The User rows of the request path, one instance for users, admission and the account-age
   * rule: a first-time user costs one statement per batch, not three.
   */
  readonly records: UserRecords;
}

export function createUsersModule(ctx: ModuleContext): UsersModule {
  const records = createUserRecords(ctx.prisma);
  return { service: createUsersService({ prisma: ctx.prisma, records }), records };
}
