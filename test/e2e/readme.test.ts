/**
 * README.md runs as pasted. Every fenced block of it is classified, or this file fails:
 *
 *  - ```ts: a whole file under examples/, named on the block's first line (`// examples/<file>.ts…`).
 *    The block must equal the file (`npm run readme:examples` copies the files in), every
 *    examples/*.ts must be shown once, and EXAMPLES below runs each file against the server.
 *  - ```sh and ```graphql: run. The line before each is `<!-- readme-test: <name> -->`, naming its
 *    entry in BLOCKS (what it must print), or `<!-- readme-test: skip: <reason> -->` for a block
 *    that cannot run here (today only `npm ci && npm test`).
 *  - no language: text (directory trees), not run. Any other language fails: decide, then add it.
 *
 * How they run: against one server started like `npm start` (src/main.ts through tsx; embedded
 * PGlite; no JWT_SECRET, so the dev secret under DATA_DIR; fraud detection on) on a free port.
 *  - sh: bash in the repository root with the server's DATA_DIR (`npm run token` then signs tokens
 *    it accepts) and `set -euo pipefail`, so a failing command fails the block. Blocks of one
 *    `session` share one bash, in README order, as if pasted one after another into one terminal.
 *    The output may carry no GraphQL error code except those in `errorCodes`. `waitFor`: after the
 *    block returned, the session's output must show this before the next block is pasted (what a
 *    person waits to see); `until`: the block runs until interrupted, so once its output shows
 *    this, the session ends (its process group is killed, as Ctrl-C would).
 *  - graphql: POSTed to /graphql with an ADMIN token; the answer must match, without errors.
 *  - Placeholders, replaced mechanically before a block runs: `localhost:4000` → the server's
 *    `127.0.0.1:<port>`; `<competition id>` → the id in the last `"createCompetition":{"id":"…"`
 *    its session printed. Examples read the server from OVATION_URL (their default is
 *    http://localhost:4000/graphql), get their arguments from EXAMPLES, and run with tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleOf, fencedBlocks, type FencedBlock } from '../../scripts/readme-examples.js';
import { resolveJwtSecret, signToken, type TokenClaims } from '../../src/guards/auth.js';
import {
  CastVoteDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  OpenCompetitionDocument,
  PublishToChannelDocument,
} from '../generated/graphql.js';
import { dataOf, execute } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WAIT_MS = 30_000;

interface ShellBlock {
  lang: 'sh';
  session: string;
  /** Each must match what the block printed (stdout and stderr, as a terminal shows them). */
  prints?: RegExp[];
  /** `extensions.code`s its output may carry. */
  errorCodes?: string[];
  waitFor?: RegExp;
  until?: RegExp;
}
interface GraphqlBlock {
  lang: 'graphql';
  answers: RegExp;
}

const ID = '[\\w-]+';
const BLOCKS: Record<string, ShellBlock | GraphqlBlock> = {
  token: { lang: 'sh', session: 'token', prints: [/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/m] },
  http: {
    lang: 'sh',
    session: 'transports',
    prints: [new RegExp(`"createCompetition":\\{"id":"${ID}","status":"DRAFT"\\}`)],
  },
  sse: {
    lang: 'sh',
    session: 'transports',
    until: /event: next\nid: \d+\ndata: \{"data":\{"tallyUpdated":\{"seq":\d+,"totalVotes":0,"entries":\[\]\}\}\}/,
  },
  'walkthrough-tokens': { lang: 'sh', session: 'walkthrough' },
  'walkthrough-create': {
    lang: 'sh',
    session: 'walkthrough',
    prints: [new RegExp(`^competition ${ID}, pitches ${ID} ${ID} ${ID}$`, 'm')],
  },
  'walkthrough-open': {
    lang: 'sh',
    session: 'walkthrough',
    prints: [/"openCompetition":\{"status":"OPEN","openedAt":"[\d-]+T/],
  },
  'walkthrough-watch': {
    lang: 'sh',
    session: 'walkthrough',
    waitFor: /event: next\nid: \d+\ndata: \{"data":\{"tallyUpdated":\{"seq":\d+,"totalVotes":0,/,
  },
  'walkthrough-vote': {
    lang: 'sh',
    session: 'walkthrough',
    prints: [new RegExp(`(\\{"data":\\{"castVote":\\{"vote":\\{"id":"${ID}"\\}\\}\\}\\}[^]*){3}`)],
    waitFor: new RegExp(`"totalVotes":3,"entries":\\[\\{"submissionId":"${ID}","votes":2,"rank":1\\}`),
  },
  'walkthrough-close': {
    lang: 'sh',
    session: 'walkthrough',
    prints: [
      /"closeCompetition":\{"status":"CLOSED","leaderboard":\[\{"rank":1,"votes":2,/,
      /"title":"Tiny libraries"/,
      /"code":"VOTING_CLOSED"/,
    ],
    errorCodes: ['VOTING_CLOSED'],
  },
  'publish-to-channel': { lang: 'graphql', answers: /^\{"data":\{"publishToChannel":\{"seq":\d+\}\}\}$/ },
};

interface ExampleContext {
  server: ServerProcess;
  /** Starts the example with these arguments and extra environment. */
  run(args?: string[], env?: Record<string, string>): Running;
  token(claims: TokenClaims): Promise<string>;
}
type Example = (ctx: ExampleContext) => Promise<void>;

/**
 * A client example that prints `<seq> <type>` for each event of the channel it is given. It
 * follows from now, so events are published until it shows one; the next ones must follow it in
 * order, none missing.
 */
async function followsChannel({ server, run, token }: ExampleContext, channel: string): Promise<void> {
  const admin = await token({ sub: 'readme-admin', role: 'ADMIN' });
  const publish = async (): Promise<number> =>
    dataOf(
      await execute(
        fetch,
        server.graphqlUrl,
        PublishToChannelDocument,
        { channel, type: 'score', data: { home: 1 } },
        admin,
      ),
    ).publishToChannel.seq;
  const example = run([channel]);
  const printed = (): number[] => [...example.output.matchAll(/^(\d+) score$/gm)].map((m) => Number(m[1]));
  for (const deadline = Date.now() + WAIT_MS; printed().length === 0;) {
    if (Date.now() > deadline || !example.alive)
      throw new Error(`${channel}: no event shown; output:\n${example.output}`);
    await publish();
    await example.waitFor(/^\d+ score$/m, 0, 300).catch(() => undefined);
  }
  await publish();
  const last = await publish();
  await example.waitFor(new RegExp(`^${last} score$`, 'm'));
  const seqs = printed();
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
}

/** Client examples, run while the server runs. */
const EXAMPLES: Record<string, Example> = {
  'examples/kit-urql.ts': (ctx) => followsChannel(ctx, 'readme-urql'),
  'examples/kit-apollo.ts': (ctx) => followsChannel(ctx, 'readme-apollo'),
  'examples/eventsource.ts': (ctx) => followsChannel(ctx, 'readme-eventsource'),
  'examples/tally-ws.ts': async ({ server, run, token }) => {
    const admin = await token({ sub: 'readme-admin', role: 'ADMIN' });
    const { createCompetition } = dataOf(
      await execute(
        fetch,
        server.graphqlUrl,
        CreateCompetitionDocument,
        { input: { title: 'WS', votingMethod: 'SIMPLE' } },
        admin,
      ),
    );
    const competitionId = createCompetition.id;
    const { createSubmission } = dataOf(
      await execute(
        fetch,
        server.graphqlUrl,
        CreateSubmissionDocument,
        { input: { competitionId, title: 'A' } },
        admin,
      ),
    );
    dataOf(await execute(fetch, server.graphqlUrl, OpenCompetitionDocument, { id: competitionId }, admin));

    const watcher = run([competitionId], { TOKEN: await token({ sub: 'readme-watcher' }) });
    await watcher.waitFor(/^\{"seq":\d+,"totalVotes":0,/m);
    const voter = await token({ sub: 'readme-voter' });
    dataOf(
      await execute(
        fetch,
        server.graphqlUrl,
        CastVoteDocument,
        { input: { competitionId, submissionId: createSubmission.id } },
        voter,
      ),
    );
    await watcher.waitFor(
      new RegExp(
        `^\\{"seq":\\d+,"totalVotes":1,"entries":\\[\\{"submissionId":"${createSubmission.id}","votes":1,"score":1,"rank":1\\}\\]\\}$`,
        'm',
      ),
    );
  },
  // Tokens of 10 s: the first refresh is due after 5 s, time enough for `npm run token` to answer
  // before the token expires (else the client reconnects rather than refreshing in-band).
  'examples/ws-token-refresh.ts': async ({ run }) => {
    await run(['10s']).waitFor(/^refreshed until \d{4}-\d\d-\d\dT[\d:.]+Z$/m);
  },
  'examples/wallet-sign-in.ts': async ({ run }) => {
    const { code, output } = await run().exited;
    expect(output).toMatch(/^signed in as wallet:\w{32,44} \(AUDIENCE\); token: eyJ[\w-]+\.[\w-]+\.[\w-]+$/m);
    expect(code).toBe(0);
  },
};

/** Server-side examples: they open the server's database themselves, after it stopped (PGlite admits one process). */
const AFTER_SERVER: Record<string, Example> = {
  'examples/publish-from-server.ts': async ({ run }) => {
    const { code, output } = await run([], { LOG_LEVEL: 'warn' }).exited;
    expect(output).toMatch(/^published \{\n {2}channel: 'app:scoreboard',\n {2}seq: \d+,\n {2}type: 'score.updated'/m);
    expect(output).toMatch(/^final published once: (\d+ null|null \d+)$/m);
    expect(code).toBe(0);
  },
};

// ---------------------------------------------------------------------------------------------

const PASSTHROUGH = ['PATH', 'HOME', 'TMPDIR', 'LANG'];
const dirs: string[] = [];
let dataDir: string;
let server: ServerProcess | undefined;
let readme: FencedBlock[];

/** A child process in its own process group, whose output (stdout and stderr interleaved) tests wait on. */
class Running {
  private text = '';
  private readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; output: string }>;

  constructor(command: string, args: string[], env: Record<string, string>) {
    this.child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    running.add(this);
    const append = (chunk: Buffer): void => {
      this.text += chunk.toString();
      for (const listener of [...this.listeners]) listener();
    };
    this.child.stdout!.on('data', append);
    this.child.stderr!.on('data', append);
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code) => {
        running.delete(this);
        for (const listener of [...this.listeners]) listener();
        resolve({ code, output: this.text });
      }),
    );
  }

  private readonly listeners = new Set<() => void>();

  get output(): string {
    return this.text;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Resolves with the index of the first match of `pattern` in the output from `from` on. */
  waitFor(pattern: RegExp, from = 0, ms = WAIT_MS): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${pattern} within ${ms} ms; output:\n${this.text}`)), ms);
      const done = (error?: Error, at?: number): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(error);
        else resolve(at!);
      };
      const check = (): void => {
        const at = this.text.slice(from).search(pattern);
        if (at >= 0) done(undefined, from + at);
        else if (!this.alive)
          done(
            new Error(
              `exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}; output:\n${this.text}`,
            ),
          );
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Ends the whole process group (a background job of a shell included); resolves once the leader exited. */
  async stop(): Promise<void> {
    if (this.alive) {
      try {
        process.kill(-this.child.pid!, 'SIGTERM');
      } catch {
        // the group is gone already
      }
    }
    await this.exited;
  }
}
const running = new Set<Running>();

function environment(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...Object.fromEntries(PASSTHROUGH.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : []))),
    DATA_DIR: dataDir,
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

async function token(claims: TokenClaims): Promise<string> {
  return signToken(await resolveJwtSecret({ jwtSecret: undefined, dataDir }), claims);
}

function runExample(file: string, args: string[] = [], env: Record<string, string> = {}): Running {
  return new Running(
    process.execPath,
    ['--import', 'tsx', file, ...args],
    environment({ OVATION_URL: server!.graphqlUrl, ...env }),
  );
}

/** The ```sh blocks of each session, in README order. */
function sessions(): Map<string, { name: string; code: string; spec: ShellBlock }[]> {
  const bySession = new Map<string, { name: string; code: string; spec: ShellBlock }[]>();
  for (const block of readme) {
    const spec = block.marker === undefined ? undefined : BLOCKS[block.marker];
    if (spec?.lang !== 'sh') continue;
    const list = bySession.get(spec.session) ?? [];
    list.push({ name: block.marker!, code: block.body, spec });
    bySession.set(spec.session, list);
  }
  return bySession;
}

function withPlaceholders(code: string, printed: string): string {
  let text = code.replaceAll('localhost:4000', new URL(server!.url).host);
  if (text.includes('<competition id>')) {
    const ids = [...printed.matchAll(/"createCompetition":\{"id":"([\w-]+)"/g)];
    if (ids.length === 0) throw new Error('<competition id>: the session printed no createCompetition id before');
    text = text.replaceAll('<competition id>', ids.at(-1)![1]!);
  }
  return text;
}

function errorCodes(output: string): string[] {
  return [...output.matchAll(/"code":"([A-Z_]+)"/g)].map((m) => m[1]!);
}

beforeAll(async () => {
  readme = fencedBlocks(await readFile(path.join(ROOT, 'README.md'), 'utf8'));
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-readme-'));
  dirs.push(dataDir);
});

afterAll(async () => {
  await Promise.all([...running].map((r) => r.stop()));
  await server?.stop();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

it('classifies every README block; its ts blocks are the examples/ files', async () => {
  const shown: string[] = [];
  const used: string[] = [];
  for (const block of readme) {
    const where = `README.md:${block.line}`;
    if (block.lang === '') continue;
    if (block.lang === 'ts') {
      const file = exampleOf(block);
      expect(file, `${where}: a ts block shows a file under examples/, named on its first line`).toBeDefined();
      expect(block.body, `${where} differs from ${file} (npm run readme:examples)`).toBe(
        await readFile(path.join(ROOT, file!), 'utf8'),
      );
      shown.push(file!);
      continue;
    }
    expect(
      ['sh', 'graphql'],
      `${where}: a \`\`\`${block.lang} block is neither run nor text; classify it here`,
    ).toContain(block.lang);
    expect(
      block.marker,
      `${where}: <!-- readme-test: <name> --> or <!-- readme-test: skip: <reason> --> right before the fence`,
    ).toBeDefined();
    if (block.marker!.startsWith('skip:')) {
      expect(block.marker!.slice('skip:'.length).trim(), `${where}: a skip says why`).not.toBe('');
      continue;
    }
    expect(BLOCKS[block.marker!]?.lang, `${where}: BLOCKS has no ${block.lang} entry "${block.marker}"`).toBe(
      block.lang,
    );
    used.push(block.marker!);
  }
  expect(used.sort()).toEqual(Object.keys(BLOCKS).sort());

  const files = (await readdir(path.join(ROOT, 'examples')))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `examples/${f}`);
  expect(shown.sort(), 'every examples/*.ts is shown once in README.md').toEqual(files.sort());
  expect(files.sort()).toEqual([...Object.keys(EXAMPLES), ...Object.keys(AFTER_SERVER)].sort());

  for (const blocks of sessions().values()) {
    for (const { name, spec } of blocks.slice(0, -1))
      expect(spec.until, `${name}: a block that runs until interrupted ends its session`).toBeUndefined();
  }
});

// Concurrently: the sessions and examples are independent (their own users and competitions).
describe.concurrent('with the server', () => {
  beforeAll(async () => {
    server = await startServerProcess({ JWT_SECRET: '', FRAUD_DETECTION_ENABLED: 'true' }, { dataDir, sources: true }); // npm start, as the README says
  });

  it.each([...new Set(Object.values(BLOCKS).flatMap((b) => (b.lang === 'sh' ? [b.session] : [])))])(
    'sh session "%s" runs as pasted',
    async (session) => {
      const blocks = sessions().get(session)!;
      const bash = new Running('bash', ['--noprofile', '--norc'], environment());
      const scripts = await mkdtemp(path.join(os.tmpdir(), 'ovation-readme-sh-'));
      dirs.push(scripts);
      try {
        bash.write('set -euo pipefail\n');
        for (const [i, { name, code, spec }] of blocks.entries()) {
          // Each block from a file, so that nothing it runs can read the next one from bash's stdin.
          const file = path.join(scripts, `${i}-${name}.sh`);
          await writeFile(file, withPlaceholders(code, bash.output));
          const from = bash.output.length;
          const mark = `__readme_block_${i}_done__`;
          bash.write(`source '${file}'; echo ${mark}\n`);
          if (spec.until) {
            await bash.waitFor(spec.until, from);
            await bash.stop();
            continue;
          }
          const end = await bash.waitFor(new RegExp(mark), from);
          const printed = bash.output.slice(from, end);
          for (const pattern of spec.prints ?? []) expect(printed, `${name} printed`).toMatch(pattern);
          expect(errorCodes(printed), `${name}: error codes`).toEqual(
            errorCodes(printed).filter((code) => spec.errorCodes?.includes(code)),
          );
          if (spec.waitFor) await bash.waitFor(spec.waitFor, from);
        }
      } finally {
        await bash.stop();
      }
    },
  );

  it.each(Object.keys(BLOCKS).filter((name) => BLOCKS[name]!.lang === 'graphql'))(
    'graphql block "%s" runs as an ADMIN',
    async (name) => {
      const spec = BLOCKS[name] as GraphqlBlock;
      const block = readme.find((b) => b.marker === name)!;
      const response = await fetch(server!.graphqlUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${await token({ sub: 'readme-admin', role: 'ADMIN' })}`,
        },
        body: JSON.stringify({ query: block.body }),
      });
      expect(await response.text()).toMatch(spec.answers);
    },
  );

  it.each(Object.keys(EXAMPLES))('%s runs', async (file) => {
    const started: Running[] = [];
    try {
      await EXAMPLES[file]!({
        server: server!,
        token,
        run: (args, env) => {
          const example = runExample(file, args, env);
          started.push(example);
          return example;
        },
      });
    } finally {
      await Promise.all(started.map((example) => example.stop()));
    }
  });
});

describe('after the server stopped', () => {
  beforeAll(async () => {
    await server?.stop();
  });

  it.each(Object.keys(AFTER_SERVER))('%s runs on the server database', async (file) => {
    await AFTER_SERVER[file]!({ server: server!, token, run: (args, env) => runExample(file, args, env) });
  });
});
