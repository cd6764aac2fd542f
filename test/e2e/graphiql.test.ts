/**
 * GraphiQL works without internet: its assets come from this server. A real headless Chromium
 * (Debian's) loads /graphql, runs a query through the page and shows the server's answer; any
 * request the page makes to another host fails the test. The IDE reaches the browser compressed
 * (it is ~9 MB as sent by render-graphiql). Signed in the way README says (a token in the Headers
 * tab), a subscription runs as that user: a notification sent to them appears in the result pane.
 * Screenshots go to a fresh directory under the OS temp dir (printed).
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PresenceDocument, SendNotificationDocument } from '../generated/graphql.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

let server: ServerProcess;
let browser: Browser;
let outputDir: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  outputDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-graphiql-'));
  console.info(`GraphiQL screenshots: ${outputDir}`);
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
    if (!['blob:', 'data:'].includes(url.protocol) && url.host !== new URL(server.url).host)
      foreign.push(request.url());
  });
  const assets: { url: string; encoding: string | undefined; bytes: Promise<number> }[] = [];
  page.on('response', (response) => {
    if (!response.url().includes('/graphiql/')) return;
    // A response still arriving when the page closes has no sizes: it is not counted.
    const bytes = response
      .request()
      .sizes()
      .then(
        (sizes) => sizes.responseBodySize + sizes.responseHeadersSize,
        () => 0,
      );
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
  await page.screenshot({ path: path.join(outputDir, 'query.png') });
  expect(foreign).toEqual([]);
  expect(assets.map((a) => new URL(a.url).pathname.split('/').at(-1))).toEqual(
    expect.arrayContaining(['graphiql.js', 'graphiql.css']),
  );
  expect(assets.filter((a) => a.encoding !== 'br').map((a) => a.url)).toEqual([]);
  const sent = (await Promise.all(assets.map((a) => a.bytes))).reduce((x, y) => x + y, 0);
  expect(sent).toBeLessThan(3_000_000);
  await page.close();
});

/** The result pane's text (Monaco renders spaces as no-break spaces). */
const resultPane = (page: Page) =>
  page.evaluate(() => (document.querySelector('.graphiql-response')?.textContent ?? '').replace(/\s/g, ' '));

it('signed in through the Headers tab, a subscription runs as that user: a notification sent to them appears', async () => {
  const userId = 'graphiql-viewer';
  const token = await tokenFor({ sub: userId, name: 'GraphiQL viewer' });
  const admin = await tokenFor({ sub: 'graphiql-admin', role: 'ADMIN' });
  const connections = async () =>
    dataOf(await execute(fetch, server.graphqlUrl, PresenceDocument, { userIds: [userId] })).presence[0]!.connections;
  const page = await browser.newPage();

  const subscription = 'subscription { notificationAdded { id title } }';
  await page.goto(`${server.graphqlUrl}?query=${encodeURIComponent(subscription)}`, { waitUntil: 'load' });
  // README: put {"Authorization": "Bearer <token>"} in the Headers tab.
  await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).click({ timeout: 30_000 });
  await page.locator('.monaco-editor[data-uri$="request-headers.json"]').click();
  await page.keyboard.press('ControlOrMeta+A');
  // insertText, not type(): the editor would close each bracket and quote typed one key at a time.
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${token}` }));
  await page.locator('.graphiql-execute-button').click();

  // Live: its user counts as connected while the subscription runs (GraphiQL connects anonymously).
  await expect.poll(connections, { timeout: 30_000 }).toBe(1);
  const title = `Hello from the test ${Date.now()}`;
  const { sendNotification } = dataOf(
    await execute(
      fetch,
      server.graphqlUrl,
      SendNotificationDocument,
      { input: { userId, type: 'graphiql', title } },
      admin,
    ),
  );
  await page.waitForFunction(
    (expected) =>
      (document.querySelector('.graphiql-response')?.textContent ?? '').replace(/\s/g, ' ').includes(expected),
    title,
    {
      timeout: 30_000,
    },
  );
  await page.screenshot({ path: path.join(outputDir, 'subscription.png') });
  const shown = await resultPane(page);
  expect(shown).toContain(sendNotification.id);
  expect(shown).not.toContain('UNAUTHENTICATED');

  // Stopping it in GraphiQL ends the subscription: the user is no longer connected.
  await page.locator('.graphiql-execute-button').click();
  await expect.poll(connections, { timeout: 30_000 }).toBe(0);
  await page.close();
});
