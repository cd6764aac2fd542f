/**
 * `npm run token -- --sub alice --name Alice --role ADMIN [--expires 12h]`, or with the compiled
 * build (the Docker image): `node dist/token.js --sub alice …`.
 * Prints a JWT signed with the secret a server with the same environment uses (JWT_SECRET, or the
 * dev secret under DATA_DIR), with JWT_ISSUER/JWT_AUDIENCE when they are set. The server's banner
 * prints the command with the variables that make it match (banner.ts).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { Role } from './generated/prisma/enums.js';
import { resolveJwtSecret, signToken } from './guards/auth.js';

const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', default: Role.AUDIENCE },
    expires: { type: 'string', default: '12h' },
  },
});

const roles = Object.values(Role) as string[];
if (!values.sub) {
  process.stderr.write(
    'usage: npm run token -- --sub <id> [--name <name>] [--role AUDIENCE|FOUNDER|JUDGE|ADMIN] [--expires 12h]\n',
  );
  process.stderr.write('   or: node dist/token.js --sub <id> … (the compiled build)\n');
  process.exit(2);
}
if (!roles.includes(values.role)) {
  process.stderr.write(`--role must be one of ${roles.join(', ')}\n`);
  process.exit(2);
}
const config = loadConfig();
const secret = await resolveJwtSecret(config);
process.stdout.write(
  (await signToken(
    secret,
    { sub: values.sub, name: values.name ?? values.sub, role: values.role as Role },
    values.expires,
    {
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
    },
  )) + '\n',
);
