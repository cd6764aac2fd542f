/**
 * GraphiQL works without internet: its assets come from this server. A real headless Chromium
 * (Debian's) loads /graphql, runs a query through the page and shows the server's answer; any
 * request the page makes to another host fails the test. The IDE reaches the browser compressed
 * (it is ~9 MB as sent by render-graphiql).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

let server: ServerProcess;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  server = await startServerProcess();
  // Playwright gives the browser a fresh temporary profile of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

it('runs a query from the GraphiQL page, with every asset served locally', async () => {
  const { competitionId } = await openCompetition(server.graphqlUrl, 1);
  const page = await browser.newPage();
  const foreign: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!['blob:', 'data:'].includes(url.protocol) && url.host !== new URL(server.url).host) foreign.push(request.url());
  });
  const assets: { url: string; encoding: string | undefined; bytes: Promise<number> }[] = [];
  page.on('response', (response) => {
    if (!response.url().includes('/graphiql/')) return;
    // A response still arriving when the page closes has no sizes: it is not counted.
    const bytes = response.request().sizes().then((sizes) => sizes.responseBodySize + sizes.responseHeadersSize, () => 0);
    assets.push({ url: response.url(), encoding: response.headers()['content-encoding'], bytes });
  });

  const query = `query { competition(id: "${competitionId}") { title status submissions { title } } }`;
  await page.goto(`${server.graphqlUrl}?query=${encodeURIComponent(query)}`, { waitUntil: 'load' });
  await page.locator('.graphiql-execute-button').click({ timeout: 30_000 });
  await page.waitForFunction(
    () => {
      const text = document.querySelector('.graphiql-response')?.textContent ?? '';
      return text.includes('"OPEN"') && text.includes('"S0"');
    },
    undefined,
    { timeout: 30_000 },
  );
  const shot = path.join(os.tmpdir(), 'ovation-graphiql.png');
  await page.screenshot({ path: shot });
  expect(foreign).toEqual([]);
  expect(assets.map((a) => new URL(a.url).pathname.split('/').at(-1))).toEqual(expect.arrayContaining(['graphiql.js', 'graphiql.css']));
  expect(assets.filter((a) => a.encoding !== 'br').map((a) => a.url)).toEqual([]);
  const sent = (await Promise.all(assets.map((a) => a.bytes))).reduce((x, y) => x + y, 0);
  expect(sent).toBeLessThan(3_000_000);
  await page.close();
});
