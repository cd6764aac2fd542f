import { defineConfig } from 'prisma/config';

// Prisma's CLI insists on its native schema-engine binary before `generate` and tries to download
// it, which fails offline. `generate` never runs the engine, so any existing file satisfies the
// check; migrations are applied by src/infra/migrate.ts through the WebAssembly engine instead.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= new URL('./scripts/schema-engine-offline.mjs', import.meta.url).pathname;
process.env.CHECKPOINT_DISABLE ??= '1';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
