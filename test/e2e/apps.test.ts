/**
 * The reference apps (apps/live) in a real browser: Debian's headless Chromium driven by
 * playwright-core, against the apps as built (vite build) and served by the example's app server,
 * and a real server process on its own data dir (so it can be restarted on the same data).
 *
 * - 20 audience pages (phone-sized contexts) and the big screen: the votes cast in the pages end
 *   as the exact standings on the big screen; the reactions tapped appear in its heat map.
 * - An audience page loses its network for 10 s while others vote, and the server restarts
 *   meanwhile: the page catches up (standings, stage messages, notifications) with nothing
 *   missed, nothing twice and no reload.
 * - An audience page whose WebSocket is blocked runs entirely over SSE.
 * - The organiser console (Apollo Client) creates, opens and runs a competition; the audience
 *   votes with each of the other methods (QUADRATIC credits, RANKED by dragging, APPROVAL).
 * Elements are found by role and accessible name, which also checks the labels. Screenshots go to
 * a fresh directory under the OS temp dir (printed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApps } from '../../apps/live/server/build.js';
import { startAppServer, type AppServer } from '../../apps/live/server/serve.js';
import { launchChromium } from '../support/chromium.js';
import { TEST_JWT_SECRET, tokenFor } from '../support/graphql.js';
import { seedPGlite, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { signToken } from '../../src/guards/auth.js';

const PHONE = { width: 390, height: 844 };
const PROJECTOR = { width: 1920, height: 1080 };
const WAIT = { timeout: 30_000 };

let server: ServerProcess;
/** The pages reach the server through this proxy (the load balancer), so a restarted instance on another port is the same URL to them. */
let balancer: TcpProxy;
let dataDir: string;
let distDir: string;
let apps: AppServer;
let browser: Browser;
let outputDir: string;
let admin: string;

/** The default vote rate limit (the test support raises every limit): the QUADRATIC ballot must live with it. */
const VOTES_PER_MINUTE = '10';

/**
 * A server process on the test's data dir: stopped and started again, it keeps its data. Fraud
 * detection on (as in production), with client IPs from X-Forwarded-For: each audience phone is on
 * its own network (audience()), the console test's bot on one of its own.
 */
async function startServer(): Promise<ServerProcess> {
  return startServerProcess(
    { FRAUD_DETECTION_ENABLED: 'true', TRUST_PROXY: 'true', RATE_LIMIT_VOTES_PER_MINUTE: VOTES_PER_MINUTE },
    { dataDir },
  );
}

beforeAll(async () => {
  outputDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-apps-'));
  console.info(`Reference apps screenshots: ${outputDir}`);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-apps-data-'));
  await seedPGlite(dataDir); // restarted on it below; a first start is zero-setup's subject
  [distDir, server] = await Promise.all([
    buildApps(await mkdtemp(path.join(os.tmpdir(), 'ovation-apps-dist-'))),
    startServer(),
  ]);
  balancer = await startTcpProxy(Number(new URL(server.url).port));
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);
  apps = await startAppServer({
    distDir,
    apiUrl: `${balancer.url}/graphql`,
    signGuestToken: (claims) => signToken(secret, { ...claims, role: 'AUDIENCE' }),
  });
  admin = await tokenFor({ sub: 'apps-organiser', name: 'Organiser', role: 'ADMIN' });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await apps?.close();
  await balancer?.close();
  await server?.stop();
  for (const dir of [dataDir, distDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

async function api<T = Record<string, unknown>>(
  query: string,
  variables: Record<string, unknown> = {},
  token = admin,
  headers: Record<string, string> = {},
): Promise<T> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

interface Setup {
  competitionId: string;
  sessionId: string;
  pitches: { id: string; title: string }[];
}

/** A competition with these pitches and a running session (START opens voting). */
async function liveCompetition(
  title: string,
  method: string,
  titles: string[],
  extra: Record<string, unknown> = {},
  founderId?: string,
): Promise<Setup> {
  const { createCompetition } = await api<{ createCompetition: { id: string } }>(
    'mutation($input: CreateCompetitionInput!) { createCompetition(input: $input) { id } }',
    { input: { title, votingMethod: method, ...extra } },
  );
  const pitches: { id: string; title: string }[] = [];
  for (const pitch of titles) {
    const { createSubmission } = await api<{ createSubmission: { id: string; title: string } }>(
      'mutation($c: ID!, $t: String!, $f: ID) { createSubmission(input: { competitionId: $c, title: $t, founderId: $f }) { id title } }',
      { c: createCompetition.id, t: pitch, f: pitches.length === 0 ? founderId : null },
    );
    pitches.push(createSubmission);
  }
  const { createSession } = await api<{ createSession: { id: string } }>(
    'mutation($c: ID!, $s: [ID!]!) { createSession(input: { competitionId: $c, submissionIds: $s, presentationSeconds: 300 }) { id } }',
    { c: createCompetition.id, s: pitches.map((p) => p.id) },
  );
  await api('mutation($id: ID!) { controlSession(input: { sessionId: $id, action: START }) { status } }', {
    id: createSession.id,
  });
  return { competitionId: createCompetition.id, sessionId: createSession.id, pitches };
}

const stageMessage = (competitionId: string, text: string) =>
  api('mutation($c: String!, $d: JSON) { publishToChannel(channel: $c, type: "message", data: $d) { seq } }', {
    c: `stage:${competitionId}`,
    d: { text },
  });

/** Page errors fail the test that opened the page. */
function watchErrors(page: Page, errors: string[], name: string): void {
  page.on('pageerror', (error) => errors.push(`${name}: ${error.message}`));
}

/** An audience member's own browser (a context): joins the competition as a guest. */
let phones = 0;
async function audience(
  competitionId: string,
  name: string,
  errors: string[],
  setup?: (context: BrowserContext) => Promise<void>,
): Promise<Page> {
  phones += 1;
  const network = { 'x-forwarded-for': `10.${phones >> 8}.${phones & 255}.1` };
  const context = await browser.newContext({ viewport: PHONE, extraHTTPHeaders: network });
  await setup?.(context);
  const page = await context.newPage();
  watchErrors(page, errors, name);
  await page.goto(`${apps.url}/audience.html?competition=${competitionId}`);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: /^Join / }).click();
  await region(page, 'Standings').waitFor(WAIT);
  await live(page);
  return page;
}

/** The kit's connection is up (the page's status line). */
const live = (page: Page) => page.locator('[role=status][data-state=live]').waitFor(WAIT);

const region = (page: Page, name: string) => page.getByRole('region', { name, exact: true });

async function waitForText(locator: Locator, pattern: RegExp): Promise<void> {
  await expect
    .poll(async () => ((await locator.textContent()) ?? '').trim(), { timeout: 30_000, interval: 200 })
    .toMatch(pattern);
}

async function transportOf(page: Page): Promise<string | null> {
  return page.getByRole('status', { name: 'Connection' }).getAttribute('data-transport');
}

/** The page's standings as "title=score", in rank order. */
async function standings(page: Page, region: string): Promise<string[]> {
  const labels = await page
    .getByRole('region', { name: region, exact: true })
    .getByRole('listitem')
    .evaluateAll((items) => items.map((li) => li.getAttribute('aria-label') ?? ''));
  return labels.map((label) => label.replace(/: rank \d+, score /, '='));
}

async function waitForStandings(page: Page, region: string, expected: string[]): Promise<void> {
  const sorted = [...expected].sort();
  await expect
    .poll(async () => (await standings(page, region)).sort(), { timeout: 30_000, interval: 250 })
    .toEqual(sorted);
}

/** No horizontal scrolling: the layout fits the viewport. */
async function fits(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
}

it('20 audience pages vote and react: the big screen shows the exact standings and the heat map', async () => {
  const errors: string[] = [];
  const { competitionId, pitches } = await liveCompetition('Pitch night', 'SIMPLE', [
    'Solar kiosks',
    'Compost robots',
    'Tiny libraries',
  ]);
  const [solar, compost, books] = pitches.map((p) => p.title) as [string, string, string];

  const screen = await (await browser.newContext({ viewport: PROJECTOR })).newPage();
  watchErrors(screen, errors, 'screen');
  await screen.goto(`${apps.url}/screen.html?competition=${competitionId}`);
  await screen.getByRole('region', { name: 'Current pitch', exact: true }).getByText(solar).waitFor(WAIT);
  await region(screen, 'Reaction heat map').waitFor(WAIT);

  // Join in batches (each page starts React, the kit and five subscriptions).
  const pages: Page[] = [];
  for (let batch = 0; batch < 4; batch += 1) {
    pages.push(
      ...(await Promise.all(
        Array.from({ length: 5 }, (_, i) => audience(competitionId, `Guest ${batch * 5 + i + 1}`, errors)),
      )),
    );
  }

  // Everyone votes for Solar kiosks, every second page for Compost robots, every third for Tiny libraries.
  const expected: Record<string, number> = { [solar]: 0, [compost]: 0, [books]: 0 };
  await Promise.all(
    pages.map(async (page, i) => {
      const choices = [solar, ...(i % 2 === 0 ? [compost] : []), ...(i % 3 === 0 ? [books] : [])];
      for (const title of choices) {
        await page.getByRole('button', { name: `Vote for ${title}` }).click();
        await page.getByRole('button', { name: `Voted for ${title}` }).waitFor(WAIT);
        expected[title] = (expected[title] ?? 0) + 1;
      }
    }),
  );
  expect(expected).toEqual({ [solar]: 20, [compost]: 10, [books]: 7 });
  const final = Object.entries(expected).map(([title, score]) => `${title}=${score}`);
  await waitForStandings(screen, 'Leaderboard', final);
  await waitForStandings(pages[19]!, 'Standings', final);

  // Reactions: the first ten pages tap near the top-left corner of the pitch, the others near the
  // bottom-right; twice each. The heat map's cells are the taps' positions (8 × 8).
  await Promise.all(
    pages.map(async (page, i) => {
      const pad = page.getByRole('button', { name: /^Tap the pitch to react/ });
      const box = (await pad.boundingBox())!;
      const at = i < 10 ? { x: box.width * 0.05, y: box.height * 0.05 } : { x: box.width * 0.95, y: box.height * 0.95 };
      for (let tap = 1; tap <= 2; tap += 1) {
        await pad.click({ position: at });
        await page.getByText(`${tap} ${tap === 1 ? 'reaction' : 'reactions'} sent`).waitFor(WAIT);
      }
    }),
  );
  const heat = region(screen, 'Reaction heat map');
  await heat.getByRole('gridcell', { name: 'Row 1, column 1: 20' }).waitFor(WAIT);
  await heat.getByRole('gridcell', { name: 'Row 8, column 8: 20' }).waitFor(WAIT);
  expect(await heat.getByTestId('reaction-total').textContent()).toBe('40');

  expect(await transportOf(pages[0]!)).toBe('ws');
  await screen.screenshot({ path: path.join(outputDir, 'screen-projector.png') });
  await pages[0]!.screenshot({ path: path.join(outputDir, 'audience-phone.png'), fullPage: true });
  expect(await fits(screen)).toBe(true);
  expect(await fits(pages[0]!)).toBe(true);
  // The same pages at the other size: the audience page on a laptop/projector, the screen on a phone.
  await pages[0]!.setViewportSize(PROJECTOR);
  await screen.setViewportSize(PHONE);
  expect(await fits(pages[0]!)).toBe(true);
  expect(await fits(screen)).toBe(true);
  await pages[0]!.screenshot({ path: path.join(outputDir, 'audience-projector.png') });
  await screen.screenshot({ path: path.join(outputDir, 'screen-phone.png'), fullPage: true });

  expect(errors).toEqual([]);
  await Promise.all([screen, ...pages].map((page) => page.context().close()));
}, 180_000);

/** Cuts a context's network: WebSockets closed and refused, HTTP offline; `restore` brings it back. */
async function cuttableNetwork(context: BrowserContext) {
  let offline = false;
  const sockets = new Set<{ page: WebSocketRoute; server: WebSocketRoute }>();
  await context.routeWebSocket(/.*/, (ws) => {
    if (offline) return ws.close();
    const pair = { page: ws, server: ws.connectToServer() };
    sockets.add(pair);
    ws.onClose(() => sockets.delete(pair));
  });
  return {
    async cut() {
      offline = true;
      await context.setOffline(true);
      for (const { page, server } of sockets) {
        await server.close().catch(() => {});
        await page.close().catch(() => {});
      }
      sockets.clear();
    },
    async restore() {
      offline = false;
      await context.setOffline(false);
    },
  };
}

it('an audience page offline for 10 s while others vote and the server restarts catches up with nothing missed and no reload', async () => {
  const errors: string[] = [];
  const { competitionId, pitches } = await liveCompetition('Resume night', 'SIMPLE', ['Alpha', 'Bravo', 'Charlie']);
  let network!: Awaited<ReturnType<typeof cuttableNetwork>>;
  const phone = await audience(competitionId, 'Offline Olga', errors, async (context) => {
    network = await cuttableNetwork(context);
  });
  const others = await Promise.all(['Ann', 'Ben', 'Cid'].map((name) => audience(competitionId, name, errors)));
  const vote = async (page: Page, title: string) => {
    await page.getByRole('button', { name: `Vote for ${title}` }).click();
    await page.getByRole('button', { name: `Voted for ${title}` }).waitFor(WAIT);
  };
  const messages = phone.getByRole('log', { name: 'Stage messages' }).getByRole('listitem');
  const notifications = phone.getByRole('log', { name: 'Notification list' }).getByRole('listitem');

  await vote(phone, 'Alpha');
  await stageMessage(competitionId, 'Welcome!');
  await messages.filter({ hasText: 'Welcome!' }).waitFor(WAIT);
  await phone.evaluate(() => ((window as unknown as { marker: string }).marker = 'same document'));
  let loads = 0;
  phone.on('load', () => (loads += 1));

  await network.cut();
  const offlineAt = Date.now();
  await phone.locator('[role=status][data-state=reconnecting], [role=status][data-state=connecting]').waitFor(WAIT);

  // While it is away: votes, messages and an announcement, then a server restart, then more.
  await vote(others[0]!, 'Bravo');
  await vote(others[1]!, 'Bravo');
  await stageMessage(competitionId, 'Bravo is on fire');
  await api('mutation { announce(input: { title: "Drinks at the bar" }) }');
  await server.stop();
  server = await startServer();
  balancer.target = Number(new URL(server.url).port);
  for (const page of others) await live(page);
  await vote(others[2]!, 'Bravo');
  await vote(others[2]!, 'Charlie');
  await stageMessage(competitionId, 'Last call for votes');
  await api('mutation { announce(input: { title: "Results in five minutes" }) }');

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, offlineAt + 10_000 - Date.now())));
  await network.restore();

  const final = [`Alpha=1`, `Bravo=3`, `Charlie=1`];
  await waitForStandings(phone, 'Standings', final);
  await waitForStandings(others[0]!, 'Standings', final);
  await messages.filter({ hasText: 'Last call for votes' }).waitFor(WAIT);
  await notifications.filter({ hasText: 'Results in five minutes' }).waitFor(WAIT);
  expect(await messages.allTextContents()).toEqual(['Welcome!', 'Bravo is on fire', 'Last call for votes']);
  expect((await notifications.allTextContents()).filter((text) => /Drinks|Results/.test(text))).toEqual([
    'Results in five minutes',
    'Drinks at the bar',
  ]);
  expect(await phone.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('same document');
  expect(loads).toBe(0);
  expect(pitches).toHaveLength(3);
  await phone.screenshot({ path: path.join(outputDir, 'audience-after-resume.png'), fullPage: true });
  expect(errors).toEqual([]);
  await Promise.all([phone, ...others].map((page) => page.context().close()));
}, 150_000);

it('an audience page whose WebSocket is blocked runs entirely over SSE', async () => {
  const errors: string[] = [];
  const { competitionId } = await liveCompetition('No WebSocket night', 'SIMPLE', ['North', 'South']);
  const screen = await (await browser.newContext({ viewport: PROJECTOR })).newPage();
  watchErrors(screen, errors, 'screen');
  await screen.goto(`${apps.url}/screen.html?competition=${competitionId}`);
  await region(screen, 'Reaction heat map').waitFor(WAIT);
  let attempts = 0;
  const phone = await audience(competitionId, 'Mobile Mo', errors, async (context) => {
    // A network that refuses WebSockets: no connection ever reaches the server.
    await context.routeWebSocket(/.*/, (ws) => {
      attempts += 1;
      void ws.close({ code: 1008, reason: 'blocked' });
    });
  });
  expect(await transportOf(phone)).toBe('sse');
  expect(attempts).toBeGreaterThan(0);

  await phone.getByRole('button', { name: 'Vote for South' }).click();
  await waitForStandings(phone, 'Standings', ['South=1', 'North=0']);
  await stageMessage(competitionId, 'Over SSE too');
  await phone.getByRole('log', { name: 'Stage messages' }).getByText('Over SSE too').waitFor(WAIT);
  await phone.getByRole('button', { name: /^Tap the pitch to react/ }).click({ position: { x: 5, y: 5 } });
  await region(screen, 'Reaction heat map').getByRole('gridcell', { name: 'Row 1, column 1: 1' }).waitFor(WAIT);
  expect(await transportOf(phone)).toBe('sse');
  expect(errors).toEqual([]);
  await Promise.all([phone, screen].map((page) => page.context().close()));
}, 90_000);

it('the organiser console creates, opens and runs a competition and shows offers live; the audience votes with QUADRATIC, RANKED and APPROVAL', async () => {
  const errors: string[] = [];
  const console_ = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
  watchErrors(console_, errors, 'console');
  await console_.goto(`${apps.url}/console.html#token=${admin}`);

  // Create and open a RANKED competition from the console.
  const form = region(console_, 'New competition');
  await form.waitFor(WAIT);
  expect(new URL(console_.url()).hash).toBe(''); // the token left the address bar
  await form.getByLabel('Title').fill('Ranked final');
  await form.getByLabel('Voting method').selectOption('RANKED');
  await form.getByLabel('Pitches, one per line').fill('Apples\nBananas\nCherries');
  await form.getByRole('button', { name: 'Create competition' }).click();
  const panel = region(console_, 'Competition');
  await panel.getByText('Apples · Bananas · Cherries').waitFor(WAIT);
  await panel.getByRole('button', { name: 'Open voting' }).click();
  await panel.getByText('OPEN', { exact: true }).waitFor(WAIT);
  const competitionId = new URL(console_.url()).searchParams.get('competition')!;

  // Run the session: create, start, next, extend, pause, resume, end.
  await console_.getByLabel('Seconds per pitch').fill('60');
  await console_.getByRole('button', { name: 'Create session' }).click();
  const session = region(console_, 'Session');
  const press = async (name: string, status: string) => {
    await session.getByRole('button', { name, exact: true }).click();
    await session.getByText(status, { exact: true }).waitFor(WAIT);
  };
  await press('Start', 'LIVE');
  await session.getByText('Pitch 1 of 3').waitFor(WAIT);
  await session.getByRole('button', { name: 'Next pitch' }).click();
  await session.getByText('Pitch 2 of 3').waitFor(WAIT);
  await session.getByRole('button', { name: 'Extend 30 s' }).click();
  await waitForText(session.getByRole('timer', { name: 'Time left' }), /^1:[23]\d$/);

  // The audience ranks by dragging: Cherries to the top; then Apples down with the arrows.
  const ranked = await audience(competitionId, 'Ranker', errors);
  const ranking = ranked.getByRole('list', { name: 'Your ranking' });
  await ranking
    .getByRole('listitem', { name: '3. Cherries' })
    .dragTo(ranking.getByRole('listitem', { name: '1. Apples' }));
  await ranking.getByRole('listitem', { name: '1. Cherries' }).waitFor(WAIT);
  await ranked.getByRole('button', { name: 'Move Apples down' }).click();
  await ranking.getByRole('listitem', { name: '3. Apples' }).waitFor(WAIT);
  await ranked.getByRole('button', { name: 'Submit ranking' }).click();
  // Borda points, n - position: 2, 1 and 0 for last place.
  await waitForStandings(ranked, 'Standings', ['Cherries=2', 'Bananas=1', 'Apples=0']);
  // The dashboard's totalVotes sums the entries' voters: the one ballot counts for all three it lists.
  await waitForText(region(console_, 'Live metrics').getByLabel('Votes', { exact: true }), /^3$/);

  await press('Pause', 'PAUSED');
  await press('Resume', 'LIVE');
  await press('End session', 'ENDED');

  // QUADRATIC with 10 credits, tapped as fast as a thumb goes: 12 taps (more than the 10 votes a
  // minute the rate limit allows) end as 3 votes on Kale (9 credits) and 1 on Leek (the last
  // credit). The app batches the taps: far fewer castVote requests than taps, none refused.
  const quadratic = await liveCompetition('Quadratic round', 'QUADRATIC', ['Kale', 'Leek'], { creditsPerVoter: 10 });
  const q = await audience(quadratic.competitionId, 'Quinn', errors);
  let castVotes = 0;
  q.on('request', (request) => {
    if (request.method() === 'POST' && request.postData()?.includes('castVote')) castVotes += 1;
  });
  const taps = [
    'More votes for Leek',
    'More votes for Kale',
    'More votes for Kale',
    'Fewer votes for Leek',
    'More votes for Kale',
  ];
  taps.push(
    ...Array.from({ length: 3 }, () => ['More votes for Leek', 'Fewer votes for Leek']).flat(),
    'More votes for Leek',
  );
  for (const name of taps) await q.getByRole('button', { name }).click();
  expect(taps).toHaveLength(12);
  await waitForText(q.getByLabel('Votes for Kale', { exact: true }), /^3$/);
  await q.getByText('Credits left: 0 of 10').waitFor(WAIT);
  expect(await q.getByRole('button', { name: 'More votes for Kale' }).isDisabled()).toBe(true);
  await waitForStandings(q, 'Standings', ['Kale=3', 'Leek=1']);
  await q.getByText('Votes saved.').waitFor(WAIT);
  expect(await q.getByRole('alert').count()).toBe(0);
  expect(castVotes).toBeGreaterThan(0);
  expect(castVotes).toBeLessThan(taps.length);

  // APPROVAL: approve two of three.
  const approval = await liveCompetition('Approval round', 'APPROVAL', ['Oak', 'Pine', 'Yew']);
  const a = await audience(approval.competitionId, 'Ada', errors);
  await a.getByRole('checkbox', { name: 'Approve Oak' }).check();
  await a.getByRole('checkbox', { name: 'Approve Yew' }).check();
  await a.getByRole('button', { name: 'Submit approvals' }).click();
  await waitForStandings(a, 'Standings', ['Oak=1', 'Yew=1', 'Pine=0']);

  // Offers: one made before the console looks (read with the session), one while it watches, then accepted.
  const founder = await tokenFor({ sub: 'apps-founder', name: 'Founder', role: 'FOUNDER' });
  const { me } = await api<{ me: { id: string } }>('query { me { id } }', {}, founder);
  const stage = await liveCompetition('Shark night', 'SIMPLE', ['Robo chef', 'Sky farms'], {}, me.id);
  // Two judges (one judge holds one open offer per pitch); accepting one rejects the other.
  const judges = [
    await tokenFor({ sub: 'apps-judge', name: 'Judge Judy', role: 'JUDGE' }),
    await tokenFor({ sub: 'apps-judge-2', name: 'Judge Dredd', role: 'JUDGE' }),
  ];
  const offer = (amount: number, judge: string) =>
    api<{ makeOffer: { id: string } }>(
      'mutation($s: ID!, $p: ID!, $a: Float!) { makeOffer(input: { sessionId: $s, submissionId: $p, type: EQUITY, amount: $a, equityPercentage: 10 }) { id } }',
      { s: stage.sessionId, p: stage.pitches[0]!.id, a: amount },
      judge,
    );
  await offer(50_000, judges[0]!);
  await region(console_, 'Competitions').getByRole('button', { name: 'Shark night' }).click();
  const offers = region(console_, 'Offers');
  await offers.getByText(/Judge Judy · equity 50,000 for 10 %/).waitFor(WAIT);
  const second = await offer(80_000, judges[1]!);
  await offers.getByText(/equity 80,000/).waitFor(WAIT);
  await api(
    'mutation($id: ID!) { respondToOffer(input: { offerId: $id, response: ACCEPT }) { status } }',
    { id: second.makeOffer.id },
    founder,
  );
  await offers.getByRole('listitem').filter({ hasText: '80,000' }).getByText('ACCEPTED').waitFor(WAIT);
  await offers.getByRole('listitem').filter({ hasText: '50,000' }).getByText('REJECTED').waitFor(WAIT);
  await api(
    'mutation($id: ID!, $s: ID!) { castVote(input: { competitionId: $id, submissionId: $s }) { vote { id } } }',
    { id: stage.competitionId, s: stage.pitches[1]!.id },
  );
  await waitForText(region(console_, 'Live metrics').getByLabel('Votes', { exact: true }), /^1$/);

  // Fraud alerts, live: a bot clapping from six accounts on one phone. The fifth is flagged (it
  // counts), the sixth blocked (DUPLICATE_DEVICE).
  const bot = { 'x-forwarded-for': '198.51.100.7', 'x-device-id': 'one-phone' };
  const refused: string[] = [];
  for (let i = 1; i <= 6; i += 1) {
    await api(
      'mutation($s: ID!) { sendReaction(input: { sessionId: $s, type: CLAP, intensity: 5 }) }',
      { s: stage.sessionId },
      await tokenFor({ sub: `apps-bot-${i}` }),
      bot,
    ).catch((error: Error) => refused.push(error.message.includes('FRAUD_BLOCKED') ? 'FRAUD_BLOCKED' : error.message));
  }
  expect(refused).toEqual(['FRAUD_BLOCKED']);
  const alerts = region(console_, 'Fraud alerts').getByRole('listitem');
  await alerts.filter({ hasText: /BLOCK DUPLICATE_DEVICE/ }).waitFor(WAIT);
  await alerts.filter({ hasText: /FLAG DUPLICATE_DEVICE/ }).waitFor(WAIT);
  await console_.screenshot({ path: path.join(outputDir, 'console.png'), fullPage: true });

  expect(await fits(console_)).toBe(true);
  await console_.setViewportSize(PHONE);
  expect(await fits(console_)).toBe(true);
  expect(errors).toEqual([]);
  await Promise.all([console_, ranked, q, a].map((page) => page.context().close()));
}, 150_000);
