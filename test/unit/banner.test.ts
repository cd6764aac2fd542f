/** The banner's token command signs with what the running server checks, in a form that runs where it runs. */
import { describe, expect, it } from 'vitest';
import { shellQuote, tokenCommand, type BannerOptions } from '../../src/banner.js';

const ROOT = '/srv/ovation';
const base: BannerOptions = {
  url: 'http://localhost:4000',
  config: { dataDir: `${ROOT}/.data`, jwtSecret: undefined, jwtIssuer: undefined, jwtAudience: undefined },
  packageRoot: `${ROOT}/`,
  cwd: ROOT,
  compiled: false,
};
const ARGS = '--sub alice --name Alice --role ADMIN';

describe('tokenCommand', () => {
  type Overrides = Partial<Omit<BannerOptions, 'config'>> & { config?: Partial<BannerOptions['config']> };
  it.each<[string, Overrides, string, string | undefined]>([
    ['the defaults', {}, `npm run token -- ${ARGS}`, undefined],
    [
      'a DATA_DIR of its own',
      { config: { dataDir: '/tmp/my data' } },
      `DATA_DIR='/tmp/my data' npm run token -- ${ARGS}`,
      undefined,
    ],
    [
      'started from a subdirectory (npm runs in the root)',
      { cwd: `${ROOT}/src` },
      `npm run token -- ${ARGS}`,
      undefined,
    ],
    [
      'JWT_SECRET: DATA_DIR does not matter',
      { config: { dataDir: '/tmp/x', jwtSecret: 's'.repeat(32) } },
      `npm run token -- ${ARGS}`,
      "with this server's JWT_SECRET in the environment",
    ],
    [
      'issuer and audience',
      { config: { jwtIssuer: 'https://id.example', jwtAudience: "ovation's" } },
      `JWT_ISSUER=https://id.example JWT_AUDIENCE='ovation'\\''s' npm run token -- ${ARGS}`,
      undefined,
    ],
    ['the compiled build in the root', { compiled: true }, `node dist/token.js ${ARGS}`, undefined],
    [
      'the compiled build started elsewhere',
      { compiled: true, cwd: '/' },
      `DATA_DIR=${ROOT}/.data node ${ROOT}/dist/token.js ${ARGS}`,
      undefined,
    ],
  ])('%s', (_, overrides, command, note) => {
    const opts = { ...base, ...overrides, config: { ...base.config, ...overrides.config } };
    expect(tokenCommand(opts)).toEqual(note === undefined ? { command } : { command, note });
  });
});

describe('shellQuote', () => {
  it.each([
    ['/tmp/data', '/tmp/data'],
    ['a b', "'a b'"],
    ["it's", `'it'\\''s'`],
    ['$HOME', "'$HOME'"],
  ])('%s → %s', (word, quoted) => {
    expect(shellQuote(word)).toBe(quoted);
  });
});
