/**
 * What main.ts prints once the server listens: the endpoints, and a token command that signs with
 * the same secret as this server (its DATA_DIR's dev secret, or JWT_SECRET) and the same
 * JWT_ISSUER/JWT_AUDIENCE, in the form that works where this server runs (npm and the sources, or
 * node and the compiled build).
 */
import path from 'node:path';
import type { Config } from './config.js';

export interface BannerOptions {
  /** The URL the server listens on (app.start()). */
  url: string;
  config: Pick<Config, 'dataDir' | 'jwtSecret' | 'jwtIssuer' | 'jwtAudience'>;
  /** The directory holding package.json. */
  packageRoot: string;
  /** This process's working directory. */
  cwd: string;
  /** Running dist/main.js (the compiled build) rather than the sources through tsx. */
  compiled: boolean;
}

const SAFE = /^[\w@%+=:,./-]+$/;
/** A word for a POSIX shell. */
export function shellQuote(word: string): string {
  return SAFE.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The command that prints a token this server accepts, and a note when it needs more than itself. */
export function tokenCommand(opts: BannerOptions): { command: string; note?: string } {
  const { config, packageRoot, cwd, compiled } = opts;
  const args = '--sub alice --name Alice --role ADMIN';
  // `npm run` runs in the package root from any directory below it; a relative `node dist/…`
  // only works from the root, so elsewhere the path is absolute and DATA_DIR always given.
  const fromRoot = !compiled || path.resolve(cwd) === path.resolve(packageRoot);
  const run = !compiled
    ? `npm run token -- ${args}`
    : `node ${shellQuote(fromRoot ? 'dist/token.js' : path.join(packageRoot, 'dist', 'token.js'))} ${args}`;
  const env: string[] = [];
  if (
    config.jwtSecret === undefined &&
    (!fromRoot || path.resolve(config.dataDir) !== path.join(packageRoot, '.data'))
  ) {
    env.push(`DATA_DIR=${shellQuote(config.dataDir)}`);
  }
  if (config.jwtIssuer !== undefined) env.push(`JWT_ISSUER=${shellQuote(config.jwtIssuer)}`);
  if (config.jwtAudience !== undefined) env.push(`JWT_AUDIENCE=${shellQuote(config.jwtAudience)}`);
  const command = [...env, run].join(' ');
  return config.jwtSecret === undefined
    ? { command }
    : { command, note: "with this server's JWT_SECRET in the environment" };
}

export function banner(opts: BannerOptions): string {
  const { url } = opts;
  const token = tokenCommand(opts);
  return [
    '',
    `  GraphiQL        ${url}/graphql`,
    `  graphql-ws      ${url.replace(/^http/, 'ws')}/graphql`,
    `  graphql-sse     ${url}/graphql/stream`,
    `  Get a token     ${token.command}`,
    ...(token.note ? [`                  (${token.note})`] : []),
    `                  then send it as "Authorization: Bearer <token>" (GraphiQL: Headers tab)`,
    '',
  ].join('\n');
}
