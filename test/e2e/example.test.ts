/**
 * `npm run example`, the README's one command for the reference apps, as a newcomer runs it in a
 * fresh clone: no configuration but ports and a data dir of its own (no JWT_SECRET, so the dev
 * secret it generates). It builds the apps, starts the server on the embedded database, seeds the
 * demo and prints three URLs; those pages, opened in Chromium, show the demo working: the big
 * screen the demo's pitch and its countdown, an audience page joins and votes and the screen
 * counts it, the console (its URL carries the ADMIN token) the demo's session and offer. Ctrl-C
 * stops the server with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { freePort } from '../support/ports.js';
import { OutputTail, killOnExit } from '../support/processes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WAIT = { timeout: 30_000 };

let runner: ChildProcess | undefined;
let browser: Browser | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await browser?.close();
  // Its whole process group (npm, tsx, the server), should the test fail before Ctrl-C.
  try {
    if (runner?.pid) process.kill(-runner.pid, 'SIGKILL');
  } catch {
    // the group is gone: Ctrl-C stopped it
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('npm run example serves the three apps next to a seeded server; Ctrl-C stops both', async () => {
  browser = await launchChromium();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-example-'));
  const [apiPort, appsPort] = [await freePort(), await freePort()];
  const output = new OutputTail(65_536);
  runner = spawn('npm', ['run', 'example'], {
    cwd: ROOT,
    // Its own process group: Ctrl-C in a terminal signals the whole group.
    detached: true,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      PORT: String(apiPort),
      APPS_PORT: String(appsPort),
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(runner);
  const exited = new Promise<number | string | null>((resolve) =>
    runner!.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  runner.stdout!.on('data', (chunk: Buffer) => output.append(chunk));
  runner.stderr!.on('data', (chunk: Buffer) => output.append(chunk));

  const deadline = Date.now() + 120_000;
  while (!/Organiser console.*\n\s+(\S+#token=\S+)/.test(output.toString())) {
    if (runner.exitCode !== null) throw new Error(`npm run example exited (${runner.exitCode}):\n${output.toString()}`);
    if (Date.now() > deadline) throw new Error(`npm run example printed no URLs within 120 s:\n${output.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const printed = output.toString();
  const url = (page: string) => new RegExp(`(http://localhost:${appsPort}/${page}\\.html\\S*)`).exec(printed)?.[1];
  const [audienceUrl, screenUrl, consoleUrl] = [url('audience'), url('screen'), url('console')];
  expect(audienceUrl).toMatch(/\?competition=[\w-]+$/);
  expect(screenUrl).toMatch(/\?competition=[\w-]+$/);
  expect(consoleUrl).toMatch(/#token=eyJ/);

  const errors: string[] = [];
  const open = async (address: string, viewport: { width: number; height: number }) => {
    const page = await (await browser!.newContext({ viewport })).newPage();
    page.on('pageerror', (error) => errors.push(`${address}: ${error.message}`));
    await page.goto(address);
    return page;
  };

  const screen = await open(screenUrl!, { width: 1920, height: 1080 });
  await screen.getByRole('heading', { name: 'Demo pitch night' }).waitFor(WAIT);
  const stage = screen.getByRole('region', { name: 'Current pitch', exact: true });
  await stage.getByText('Solar kiosks').waitFor(WAIT);
  await expect.poll(() => stage.getByRole('timer', { name: 'Time left' }).textContent(), WAIT).toMatch(/^\d:\d\d$/);

  const phone = await open(audienceUrl!, { width: 390, height: 844 });
  await phone.getByLabel('Your name').fill('Newcomer');
  await phone.getByRole('button', { name: 'Join Demo pitch night' }).click();
  await phone.getByRole('button', { name: 'Vote for Compost robots' }).click();
  await phone.getByRole('button', { name: 'Voted for Compost robots' }).waitFor(WAIT);
  await screen
    .getByRole('region', { name: 'Leaderboard', exact: true })
    .getByRole('listitem', { name: 'Compost robots: rank 1, score 1' })
    .waitFor(WAIT);

  const console_ = await open(consoleUrl!, { width: 1440, height: 1000 });
  await console_.getByRole('region', { name: 'Session', exact: true }).getByText('LIVE', { exact: true }).waitFor(WAIT);
  await console_
    .getByRole('region', { name: 'Offers', exact: true })
    .getByText(/equity 50,000 for 10 %/)
    .waitFor(WAIT);
  expect(errors).toEqual([]);

  // Ctrl-C (the terminal signals the group; npm ends by the signal): the server stops too.
  process.kill(-runner.pid!, 'SIGINT');
  expect([0, 'SIGINT']).toContain(await exited);
  await expect
    .poll(
      () =>
        fetch(`http://127.0.0.1:${apiPort}/ready`).then(
          () => 'serving',
          () => 'stopped',
        ),
      { timeout: 20_000, interval: 250 },
    )
    .toBe('stopped');
}, 240_000);
