/**
 * "A browser's EventSource resumes by itself" (the contract's SSE promise), in a real headless
 * Chromium: the page opens README's `new EventSource('/graphql?query=…&variables=…')` on a public
 * channel, the network between it and the server drops (a TCP relay in between cuts every
 * connection), events are published meanwhile, and the browser's own reconnect (with the
 * `Last-Event-ID` it kept) gets exactly the missed events, then live ones: no gap, no duplicate.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { PublishToChannelDocument } from '../generated/graphql.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** A TCP relay to the server that can cut every connection through it, and keeps each request's head. */
interface Relay {
  url: string;
  heads: string[];
  cut(): void;
  close(): Promise<void>;
}

async function relayTo(target: URL): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const heads: string[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    // The page only sends GETs (no bodies), one after another on a kept-alive connection.
    let pending = '';
    client.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        heads.push(pending.slice(0, end));
        pending = pending.slice(end + 4);
      }
    });
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

let server: ServerProcess;
let relay: Relay;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  server = await startServerProcess();
  relay = await relayTo(new URL(server.url));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});

afterAll(async () => {
  await browser?.close();
  await relay?.close();
  await server?.stop();
});

it('a browser’s EventSource on /graphql resumes after a dropped connection with exactly the missed events', async () => {
  const admin = await tokenFor({ sub: 'eventsource-admin', role: 'ADMIN' });
  const channel = `app:eventsource-${Date.now().toString(36)}`;
  const publish = async () =>
    dataOf(
      await execute(fetch, server.graphqlUrl, PublishToChannelDocument, { channel, type: 'tick', data: {} }, admin),
    ).publishToChannel.seq;

  const page = await browser.newPage();
  await page.goto(`${relay.url}/health`); // any page of the server's origin
  await page.evaluate((c) => {
    const seen: { id: string; seq: number }[] = [];
    Object.assign(window, { seen });
    // README's example, as written there:
    const source = new EventSource(
      '/graphql?query=' +
        encodeURIComponent('subscription($c: String!) { channelEvent(channel: $c) { seq type data } }') +
        '&variables=' +
        encodeURIComponent(JSON.stringify({ c })),
    );
    source.addEventListener('next', (event) => {
      const { lastEventId, data } = event as MessageEvent<string>;
      seen.push({
        id: lastEventId,
        seq: (JSON.parse(data) as { data: { channelEvent: { seq: number } } }).data.channelEvent.seq,
      });
    });
    source.addEventListener('complete', () => source.close());
  }, channel);
  const seen = () => page.evaluate(() => (window as unknown as { seen: { id: string; seq: number }[] }).seen);
  const until = (count: number) =>
    page.waitForFunction((n) => (window as unknown as { seen: unknown[] }).seen.length >= n, count, {
      timeout: 20_000,
    });

  // The subscription is live once the server answered (a first `:` comment): wait for the first event.
  await expect.poll(() => relay.heads.filter((h) => h.startsWith('GET /graphql?')).length, { timeout: 10_000 }).toBe(1);
  await expect
    .poll(async () => (await publish(), (await seen()).length), { timeout: 10_000, interval: 500 })
    .toBeGreaterThan(0);
  const before = (await seen()).length;
  await publish();
  await until(before + 1);

  const lastId = (await seen()).at(-1)!.id;
  relay.cut();
  await publish();
  await publish();
  // The browser reconnects on its own (after its retry delay), sending the last id it got.
  await until(before + 3);
  await publish();
  await until(before + 4);

  const events = await seen();
  const seqs = events.map((e) => e.seq);
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i)); // no gap, no duplicate
  expect(events.every((e) => e.id === String(e.seq))).toBe(true);
  const requests = relay.heads.filter((h) => h.startsWith('GET /graphql?'));
  expect(requests).toHaveLength(2);
  expect(requests[1]).toMatch(new RegExp(`\\r\\nlast-event-id: ${lastId}\\r\\n`, 'i'));
  await page.close();
});
