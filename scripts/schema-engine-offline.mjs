#!/usr/bin/env node
// Stand-in for Prisma's native `schema-engine` binary, which cannot be downloaded offline.
// prisma.config.ts points PRISMA_SCHEMA_ENGINE_BINARY here so that `prisma generate`, `validate`
// and `format` skip the download (they never run the engine). It answers `--version` like the
// real binary; anything else is refused with the offline alternatives:
//   migrations are applied at start-up by src/infra/migrate.ts, and created or checked with
//   `npm run db:migrate:create -- --name <name>` / `-- --check` (scripts/migration-create.ts).
import { createRequire } from 'node:module';

const args = process.argv.slice(2);

if (args.includes('--version') || args.includes('-V')) {
  let hash = 'unknown';
  try {
    hash = createRequire(import.meta.url)('@prisma/engines-version').enginesVersion;
  } catch {
    // Not installed next to this project: the version line is informative only.
  }
  process.stdout.write(`schema-engine-cli ${hash}\n`);
  process.exit(0);
}

process.stderr.write(
  'The native Prisma schema engine is not available on this machine (offline).\n' +
    'Migrations are applied at start-up (src/infra/migrate.ts); create one with\n' +
    '  npm run db:migrate:create -- --name <name>\n' +
    'and check that prisma/migrations matches the schema with\n' +
    '  npm run db:migrate:create -- --check\n',
);
process.exit(1);
