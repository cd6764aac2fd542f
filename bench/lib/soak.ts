/**
 * The soak's load and its measurements, against running instances (bench/soak.ts starts them for
 * `npm run soak`; test/e2e/soak.test.ts runs 60 s of it in CI).
 *
 * Steady load, alternating between the instances: APPROVAL ballots re-cast by a fixed pool of
 * voters (a ballot replaces the voter's last one, so no row or key grows per vote beyond what the
 * product keeps), reactions from a pool of reactors to a live session, messages between two
 * participants, and churned connections: WATCHERS live subscriptions (tallyUpdated and messageAdded
 * over graphql-ws, reactions over SSE) of which one is closed and a new one opened every
 * 1/churnPerSec s. Every operation that fails (a GraphQL error, a refused connection, a stream that
 * ends with an error) is an error.
 *
 * Sampled every sampleEveryS: each instance's RSS (/proc/<pid>/status) and open file descriptors
 * (/proc/<pid>/fd: sockets, files, the event loop's own), and Redis's INFO memory used_memory.
 * Each series' slope per minute is a least-squares line through the samples after warm-up.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { print } from 'graphql';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import {
  CastVoteDocument,
  ControlSessionDocument,
  CreateCompetitionDocument,
  CreateConversationDocument,
  CreateSessionDocument,
  CreateSubmissionDocument,
  MeDocument,
  MessageAddedDocument,
  OpenCompetitionDocument,
  ResumeReactionsDocument,
  SendMessageDocument,
  SendReactionDocument,
  TallyUpdatedDocument,
} from '../../test/generated/graphql.js';
import { dataOf, execute, tokenFor } from '../../test/support/graphql.js';
import { readProc } from './proc.js';

export interface SoakInstance {
  name: string;
  graphqlUrl: string;
  wsUrl: string;
  pid: number;
}

export interface SoakOptions {
  instances: readonly SoakInstance[];
  redisUrl: string;
  durationS: number;
  /** Samples before this are reported but left out of the slopes (JIT, pools and caches filling). */
  warmupS: number;
  sampleEveryS?: number;
  votesPerSec?: number;
  reactionsPerSec?: number;
  messagesPerSec?: number;
  watchers?: number;
  churnPerSec?: number;
  log?: (line: string) => void;
}

export interface SoakSample {
  /** Seconds since the load started. */
  t: number;
  rssMb: Record<string, number>;
  fds: Record<string, number>;
  redisUsedMb: number;
}

export interface SoakReport {
  durationS: number;
  warmupS: number;
  loadavgStart: number[];
  loadavgEnd: number[];
  counts: {
    votes: number;
    reactions: number;
    messages: number;
    connectionsOpened: number;
    eventsReceived: number;
  };
  errors: number;
  firstErrors: string[];
  /**
   * Descriptors of each instance before the watchers opened, and once the load stopped and every
   * watcher closed (polled up to 30 s for the closes to land): what a leak per connection leaves.
   */
  fdsBefore: Record<string, number>;
  fdsAfter: Record<string, number>;
  /** Per minute, after warm-up: MB for RSS and Redis, descriptors for fds. */
  slopes: { rssMbPerMin: Record<string, number>; fdsPerMin: Record<string, number>; redisMbPerMin: number };
  samples: SoakSample[];
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

interface Watcher {
  close(): void;
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const {
    instances,
    durationS,
    warmupS,
    sampleEveryS = 5,
    votesPerSec = 5,
    reactionsPerSec = 5,
    messagesPerSec = 2,
    watchers: watcherCount = 50,
    churnPerSec = 5,
    log = () => undefined,
  } = opts;
  const loadavgStart = os.loadavg();
  const errors: string[] = [];
  const fail = (what: string, detail: unknown): void => {
    errors.push(`${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`.slice(0, 500));
  };
  const counts = { votes: 0, reactions: 0, messages: 0, connectionsOpened: 0, eventsReceived: 0 };
  const on = (i: number): SoakInstance => instances[i % instances.length]!;
  const first = instances[0]!;

  // The stage: an APPROVAL competition (re-castable ballots), a live session, a conversation.
  const admin = await tokenFor({ sub: 'soak-admin', name: 'Ada', role: 'ADMIN' }, '1d');
  const [alice, bob] = await Promise.all([tokenFor({ sub: 'soak-alice' }, '1d'), tokenFor({ sub: 'soak-bob' }, '1d')]);
  for (const token of [alice, bob]) dataOf(await execute(fetch, first.graphqlUrl, MeDocument, {}, token));
  const { createCompetition } = dataOf(
    await execute(
      fetch,
      first.graphqlUrl,
      CreateCompetitionDocument,
      { input: { title: 'Soak', votingMethod: 'APPROVAL' } },
      admin,
    ),
  );
  const competitionId = createCompetition.id;
  const submissionIds: string[] = [];
  for (let i = 0; i < 4; i += 1) {
    const { createSubmission } = dataOf(
      await execute(
        fetch,
        first.graphqlUrl,
        CreateSubmissionDocument,
        { input: { competitionId, title: `S${i}` } },
        admin,
      ),
    );
    submissionIds.push(createSubmission.id);
  }
  dataOf(await execute(fetch, first.graphqlUrl, OpenCompetitionDocument, { id: competitionId }, admin));
  const { createSession } = dataOf(
    await execute(
      fetch,
      first.graphqlUrl,
      CreateSessionDocument,
      { input: { competitionId, submissionIds, presentationSeconds: 86_400 } },
      admin,
    ),
  );
  const sessionId = createSession.id;
  dataOf(
    await execute(fetch, first.graphqlUrl, ControlSessionDocument, { input: { sessionId, action: 'START' } }, admin),
  );
  const { createConversation } = dataOf(
    await execute(fetch, first.graphqlUrl, CreateConversationDocument, { participantIds: ['soak-bob'] }, alice),
  );
  const conversationId = createConversation.id;
  const voters = await Promise.all(Array.from({ length: 200 }, (_, i) => tokenFor({ sub: `soak-voter-${i}` }, '1d')));
  const reactors = await Promise.all(
    Array.from({ length: 50 }, (_, i) => tokenFor({ sub: `soak-reactor-${i}` }, '1d')),
  );

  let running = true;
  /** Calls `step(i)` every `1000 / perSec` ms (open loop: a slow step does not slow the next). */
  const paced = async (perSec: number, step: (i: number) => Promise<void>): Promise<void> => {
    if (perSec <= 0) return;
    const every = 1000 / perSec;
    const inFlight = new Set<Promise<void>>();
    const started = Date.now();
    for (let i = 0; running; i += 1) {
      const p: Promise<void> = step(i).finally(() => inFlight.delete(p));
      inFlight.add(p);
      const due = started + (i + 1) * every;
      await sleep(Math.max(0, due - Date.now()));
    }
    await Promise.all(inFlight);
  };
  const mutate = async (what: string, run: () => Promise<{ errors?: readonly unknown[] | undefined }>) => {
    try {
      const result = await run();
      if (result.errors?.length) fail(what, result.errors[0]);
      return !result.errors?.length;
    } catch (error) {
      fail(what, String(error));
      return false;
    }
  };

  // Watchers: open, count their events, close; any error result or failed connection is an error.
  const openWs = (instance: SoakInstance, query: string, variables: Record<string, unknown>, token?: string) => {
    const socket = new WebSocket(instance.wsUrl, 'graphql-transport-ws');
    let closing = false;
    socket.on('open', () =>
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }),
      ),
    );
    socket.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString()) as { type: string; payload?: { errors?: unknown[] } };
      if (message.type === 'connection_ack')
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
      else if (message.type === 'next') {
        if (message.payload?.errors) fail(`ws ${instance.name}`, message.payload.errors[0]);
        else counts.eventsReceived += 1;
      } else if (message.type === 'error' || message.type === 'complete') fail(`ws ${instance.name}`, message);
    });
    socket.on('error', (error) => {
      if (!closing) fail(`ws ${instance.name}`, String(error));
    });
    socket.on('close', (code) => {
      if (!closing) fail(`ws ${instance.name} closed`, code);
    });
    return {
      close() {
        closing = true;
        // Still connecting (a loaded machine): terminate, which ws reports as an error we ignore.
        if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
        else socket.close(1000);
      },
    };
  };
  const openSse = (instance: SoakInstance, query: string, variables: Record<string, unknown>) => {
    const abort = new AbortController();
    void (async () => {
      try {
        const response = await fetch(instance.graphqlUrl, {
          method: 'POST',
          headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
          body: JSON.stringify({ query, variables }),
          signal: abort.signal,
        });
        if (!response.ok || !response.body) return fail(`sse ${instance.name}`, response.status);
        const decoder = new TextDecoder();
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          const text = decoder.decode(chunk, { stream: true });
          if (text.includes('"errors"')) fail(`sse ${instance.name}`, text);
          counts.eventsReceived += (text.match(/^event: next$/gm) ?? []).length;
        }
        if (!abort.signal.aborted) fail(`sse ${instance.name}`, 'stream ended');
      } catch (error) {
        if (!abort.signal.aborted) fail(`sse ${instance.name}`, String(error));
      }
    })();
    return { close: () => abort.abort() };
  };
  const tally = print(TallyUpdatedDocument);
  const messages = print(MessageAddedDocument);
  const reactions = print(ResumeReactionsDocument);
  const openWatcher = (i: number): Watcher => {
    counts.connectionsOpened += 1;
    const instance = on(i);
    switch (i % 3) {
      case 0:
        return openWs(instance, tally, { competitionId });
      case 1:
        return openWs(instance, messages, { conversationId }, i % 2 ? alice : bob);
      default:
        return openSse(instance, reactions, { sessionId });
    }
  };
  const fdsNow = () => Object.fromEntries(instances.map((x) => [x.name, fdCount(x.pid)]));
  const fdsBefore = fdsNow();
  const live: Watcher[] = Array.from({ length: watcherCount }, (_, i) => openWatcher(i));

  // Samples.
  const redis = new Redis(opts.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const startedAt = Date.now();
  const samples: SoakSample[] = [];
  const sample = async (): Promise<void> => {
    const info = await redis.info('memory');
    const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
    const s: SoakSample = { t: (Date.now() - startedAt) / 1000, rssMb: {}, fds: {}, redisUsedMb: used / 1_048_576 };
    for (const instance of instances) {
      s.rssMb[instance.name] = (readProc(instance.pid)?.rssKb ?? NaN) / 1024;
      s.fds[instance.name] = fdCount(instance.pid);
    }
    samples.push(s);
    log(
      `[soak] t=${Math.round(s.t)}s rss=${instances.map((x) => round(s.rssMb[x.name]!, 1)).join('/')}MB fds=${instances
        .map((x) => s.fds[x.name])
        .join('/')} redis=${round(s.redisUsedMb, 2)}MB votes=${counts.votes} reactions=${counts.reactions} messages=${
        counts.messages
      } connections=${counts.connectionsOpened} events=${counts.eventsReceived} errors=${errors.length}`,
    );
  };
  const sampler = (async () => {
    for (let k = 0; Date.now() - startedAt < durationS * 1000; k += 1) {
      await sample();
      await sleep(Math.max(0, startedAt + (k + 1) * sampleEveryS * 1000 - Date.now()));
    }
    running = false;
  })();

  let nextWatcher = watcherCount;
  await Promise.all([
    sampler,
    paced(votesPerSec, async (i) => {
      const approvals = submissionIds.filter((_, k) => (i >> k) & 1);
      const ok = await mutate('castVote', () =>
        execute(
          fetch,
          on(i).graphqlUrl,
          CastVoteDocument,
          { input: { competitionId, approvals: approvals.length ? approvals : [submissionIds[0]!] } },
          voters[i % voters.length],
        ),
      );
      if (ok) counts.votes += 1;
    }),
    paced(reactionsPerSec, async (i) => {
      const ok = await mutate('sendReaction', () =>
        execute(
          fetch,
          on(i).graphqlUrl,
          SendReactionDocument,
          { input: { sessionId, type: 'CLAP', intensity: 1 + (i % 10) } },
          reactors[i % reactors.length],
        ),
      );
      if (ok) counts.reactions += 1;
    }),
    paced(messagesPerSec, async (i) => {
      const ok = await mutate('sendMessage', () =>
        execute(
          fetch,
          on(i).graphqlUrl,
          SendMessageDocument,
          { input: { conversationId, body: `soak ${i}` } },
          i % 2 ? alice : bob,
        ),
      );
      if (ok) counts.messages += 1;
    }),
    paced(churnPerSec, async () => {
      live.shift()?.close();
      live.push(openWatcher(nextWatcher++));
    }),
  ]);
  for (const watcher of live) watcher.close();
  redis.disconnect();
  const settledBy = Date.now() + 30_000;
  let fdsAfter = fdsNow();
  while (instances.some((x) => fdsAfter[x.name]! > fdsBefore[x.name]! + 5) && Date.now() < settledBy) {
    await sleep(500);
    fdsAfter = fdsNow();
  }

  const after = samples.filter((s) => s.t >= warmupS);
  const perMin = (y: (s: SoakSample) => number) => round(slope(after.map((s) => ({ x: s.t / 60, y: y(s) }))), 3);
  return {
    durationS,
    warmupS,
    loadavgStart,
    loadavgEnd: os.loadavg(),
    counts,
    errors: errors.length,
    firstErrors: errors.slice(0, 10),
    fdsBefore,
    fdsAfter,
    slopes: {
      rssMbPerMin: Object.fromEntries(instances.map((x) => [x.name, perMin((s) => s.rssMb[x.name]!)])),
      fdsPerMin: Object.fromEntries(instances.map((x) => [x.name, perMin((s) => s.fds[x.name]!)])),
      redisMbPerMin: perMin((s) => s.redisUsedMb),
    },
    samples,
  };
}
