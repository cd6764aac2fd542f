/**
 * `npm run token -- --sub alice --name Alice --role ADMIN [--expires 12h]`
 * Prints a JWT signed with the secret the server in this directory uses (JWT_SECRET, or the dev
 * secret under DATA_DIR), with JWT_ISSUER/JWT_AUDIENCE when they are set.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { Role } from '../src/generated/prisma/enums.js';
import { resolveJwtSecret, signToken } from '../src/guards/auth.js';

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
  process.stderr.write('usage: npm run token -- --sub <id> [--name <name>] [--role AUDIENCE|FOUNDER|JUDGE|ADMIN] [--expires 12h]\n');
  process.exit(2);
}
if (!roles.includes(values.role)) {
  process.stderr.write(`--role must be one of ${roles.join(', ')}\n`);
  process.exit(2);
}
const config = loadConfig();
const secret = await resolveJwtSecret(config);
process.stdout.write(
  (await signToken(secret, { sub: values.sub, name: values.name ?? values.sub, role: values.role as Role }, values.expires, {
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
  })) + '\n',
);
