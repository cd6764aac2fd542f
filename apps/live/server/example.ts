/**
 * `npm run example`: the server on the embedded database (as `npm start`), the three reference
 * apps built and served next to it, and a demo competition with a live session, so the screens
 * show something at once. Prints the URLs; Ctrl-C stops everything.
 *
 *   PORT [4000]       the API
 *   APPS_PORT [5173]  the apps
 *   DATA_DIR [./.data] the server's data (and dev JWT secret), as for npm start
 *   NO_SEED=1         skip the demo competition
 *
 * Tokens: the runner signs them with the secret of the server it started (DATA_DIR's dev secret,
 * or JWT_SECRET), as `npm run token` does: the console's ADMIN token goes into the printed console
 * URL only; audience pages get guest AUDIENCE tokens from the app server (serve.ts).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../../../src/config.js';
import { resolveJwtSecret, signToken } from '../../../src/guards/auth.js';
import { APPS_ROOT, buildApps } from './build.js';
import { seedDemo } from './seed.js';
import { startAppServer } from './serve.js';

const REPO = path.resolve(APPS_ROOT, '../..');
const apiPort = Number(process.env['PORT'] ?? 4000);
const appsPort = Number(process.env['APPS_PORT'] ?? 5173);
const dataDir = path.resolve(process.env['DATA_DIR'] ?? path.join(REPO, '.data'));
const apiOrigin = `http://localhost:${apiPort}`;

console.log('Building the apps…');
const distDir = await buildApps();

console.log('Starting the server…');
const server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
  cwd: REPO,
  env: { ...process.env, PORT: String(apiPort), DATA_DIR: dataDir },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
server.once('exit', (code) => {
  if (!stopping) {
    void apps?.close();
    console.error(`The server exited (${code}); stopping.`);
    process.exit(1);
  }
});
for (let ready = false; !ready;) {
  await new Promise((r) => setTimeout(r, 200));
  ready = await fetch(`${apiOrigin}/ready`).then(
    (r) => r.ok,
    () => false,
  );
}

let stopping = false;
async function stop(code = 0): Promise<never> {
  stopping = true;
  await apps?.close();
  server.kill('SIGTERM');
  await exited;
  process.exit(code);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
// Anything failing from here on must not leave the server running behind us.
process.on('exit', () => server.kill('SIGTERM'));

// The same secret, issuer and audience as the server just started (its DATA_DIR).
const config = loadConfig({ ...process.env, DATA_DIR: dataDir });
const secret = await resolveJwtSecret(config);
const issuer = { issuer: config.jwtIssuer, audience: config.jwtAudience };
const adminToken = await signToken(secret, { sub: 'organiser', name: 'Organiser', role: 'ADMIN' }, '12h', issuer);

let apps: Awaited<ReturnType<typeof startAppServer>> | undefined;
apps = await startAppServer({
  distDir,
  apiUrl: `${apiOrigin}/graphql`,
  port: appsPort,
  host: 'localhost',
  signGuestToken: (claims) => signToken(secret, { ...claims, role: 'AUDIENCE' }, '12h', issuer),
});

const competitionId = process.env['NO_SEED']
  ? null
  : await seedDemo(`${apiOrigin}/graphql`, adminToken, (sub, role) =>
      signToken(secret, { sub, name: sub, role }, '1h', issuer),
    );
const query = competitionId ? `?competition=${competitionId}` : '';
console.log(`
Ovation reference apps (Ctrl-C stops everything)
  Audience (open several: each tab or browser profile is one guest):
    ${apps.url}/audience.html${query}
  Big screen:
    ${apps.url}/screen.html${query}
  Organiser console (this link carries an ADMIN token: keep it to yourself):
    ${apps.url}/console.html${query}#token=${adminToken}
`);
