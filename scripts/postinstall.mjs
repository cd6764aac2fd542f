/**
 * npm's postinstall: generates the Prisma client and Pothos types (src/generated, from
 * prisma/schema.prisma) and the tests' typed documents (test/generated) in a development install.
 *
 * A production install (`npm ci --omit=dev`, with `--omit=optional` in the Dockerfile) skips
 * both: it has no use for them (the compiled build in dist/ already contains the generated
 * client) and not the tools. The Prisma CLI may still be there (@prisma/client names it as an
 * optional peer, so npm keeps it unless optional packages are omitted too), but without its
 * config it would try to download an engine; graphql-codegen, which nothing else pulls in, is
 * what tells a development install.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

// npm runs lifecycle scripts in the package root, with its dependencies' bins here.
const bin = (tool) => path.join('node_modules', '.bin', tool);

if (!existsSync(bin('graphql-codegen'))) {
  console.log('postinstall: no dev dependencies (a production install): Prisma client and codegen skipped');
  process.exit(0);
}
for (const [tool, ...args] of [
  ['prisma', 'generate'],
  ['graphql-codegen', '--config', 'codegen.yml', '--silent'],
]) {
  const { status, error } = spawnSync(bin(tool), args, { stdio: 'inherit' });
  if (error) throw error;
  if (status !== 0) process.exit(status ?? 1);
}
