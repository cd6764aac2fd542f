/**
 * GET /metrics after a scripted scenario, on both backends: the exact deltas of the contract's
 * series (api-contract.graphql, "Operations") and of the operator's (rate-limit rejections and
 * strikes, latency histograms, live subscriptions and connections, delivered events and their
 * lag), and METRICS_TOKEN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  OpenCompetitionDocument,
  PresenceChangedDocument,
  PresenceDocument,
  SendReactionDocument,
  TallyUpdatedDocument,
} from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';
import { scrape, valueOf } from '../support/metrics.js';

const METRICS_TOKEN = 'metrics-token-for-tests';

describe.each(backends)('metrics on $name', (backend) => {
  let infra: Awaited<ReturnType<typeof backend.start>>;
  let t: TestApp;
  const gql = <R, V>(doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string) =>
    execute(fetch, t.graphqlUrl, doc, variables, token);

  beforeAll(async () => {
    infra = await backend.start();
    t = await startTestApp({ ...infra.env, METRICS_TOKEN, RATE_LIMIT_REACTIONS_PER_MINUTE: '30' });
  });
  afterAll(async () => {
    await t?.stop();
    await infra?.stop();
  });

  it.each([
    ['no Authorization', undefined],
    ['another token', `Bearer ${METRICS_TOKEN}x`],
    ['a Basic credential', `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}`],
  ])('answers 401 to %s when METRICS_TOKEN is set', async (_, authorization) => {
    const response = await fetch(`${t.url}/metrics`, authorization ? { headers: { authorization } } : {});
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain('ovation_');
  });

  it('counts a scripted scenario exactly: 20 votes, 100 reactions against a limit of 30, one watcher', async () => {
    const admin = await tokenFor({ sub: `admin-${backend.name}`, name: 'Admin', role: 'ADMIN' });
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Metrics', votingMethod: 'SIMPLE' } }, admin),
    );
    const { createSubmission } = dataOf(
      await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title: 'Only' } }, admin),
    );
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    const prisma = t.app.database.prisma;
    const session = await prisma.eventSession.create({
      data: { competitionId: createCompetition.id, status: 'LIVE', submissionIds: [], presentationSeconds: 60 },
    });

    const watcher = subscribe(
      'graphql-ws',
      t.url,
      TallyUpdatedDocument,
      { competitionId: createCompetition.id },
      admin,
    );
    await watcher.waitFor((r) => r.data?.tallyUpdated.totalVotes === 0);
    const before = await scrape(t.url, METRICS_TOKEN);

    for (let i = 0; i < 20; i += 1) {
      const voter = await tokenFor({ sub: `voter-${backend.name}-${i}`, name: `Voter ${i}`, role: 'AUDIENCE' });
      dataOf(
        await gql(
          CastVoteDocument,
          { input: { competitionId: createCompetition.id, submissionId: createSubmission.id } },
          voter,
        ),
      );
    }
    const fan = await tokenFor({ sub: `fan-${backend.name}`, name: 'Fan', role: 'AUDIENCE' });
    const codes: unknown[] = [];
    for (let i = 0; i < 100; i += 1) {
      const result = await gql(
        SendReactionDocument,
        { input: { sessionId: session.id, type: 'CLAP', intensity: 5 } },
        fan,
      );
      codes.push(result.errors ? codesOf(result)[0] : 'OK');
    }
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(70);
    await watcher.waitFor((r) => r.data?.tallyUpdated.totalVotes === 20);
    const after = await scrape(t.url, METRICS_TOKEN);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);

    const ops = 'ovation_graphql_operations_total';
    expect(delta(ops, { type: 'mutation', name: 'castVote', code: 'OK' })).toBe(20);
    expect(delta(ops, { type: 'mutation', name: 'sendReaction', code: 'OK' })).toBe(30);
    expect(delta(ops, { type: 'mutation', name: 'sendReaction', code: 'RATE_LIMITED' })).toBe(70);
    expect(delta('ovation_graphql_operation_duration_seconds_count', { type: 'mutation', name: 'castVote' })).toBe(20);
    expect(delta('ovation_rate_limit_rejections_total', { rule: 'reactions' })).toBe(70);
    // The first refusal is a strike that blocks (RATE_LIMIT_BLOCK_BASE_MS, 60 s): the other 69 fall in the block.
    expect(delta('ovation_rate_limit_strikes_total', { rule: 'reactions' })).toBe(1);
    expect(valueOf(after, ops, { type: 'subscription', name: 'tallyUpdated', code: 'OK' })).toBe(1);
    expect(valueOf(after, 'ovation_subscriptions', { field: 'tallyUpdated' })).toBe(1);
    expect(valueOf(after, 'ovation_connections', { transport: 'ws' })).toBe(1);
    expect(valueOf(after, 'ovation_connections', { transport: 'sse' })).toBe(0);

    // Every tally result the watcher got was counted once, with its lag.
    const delivered = delta('ovation_events_delivered_total', { field: 'tallyUpdated' });
    const received = watcher.results.filter((r) => (r.data?.tallyUpdated.totalVotes ?? 0) > 0).length;
    expect(delivered).toBe(received);
    expect(delta('ovation_delivery_lag_seconds_count', { field: 'tallyUpdated' })).toBe(delivered);
    expect(valueOf(after, 'ovation_dependency_up', { dependency: 'database' })).toBe(1);
    if (infra.env['REDIS_URL']) expect(valueOf(after, 'ovation_dependency_up', { dependency: 'redis' })).toBe(1);
    // prom-client's process series: event-loop lag, GC, memory.
    expect(after.has('ovation_nodejs_eventloop_lag_p99_seconds')).toBe(true);
    expect(valueOf(after, 'ovation_process_resident_memory_bytes')).toBeGreaterThan(0);

    // A late joiner gets the latest standings at once: delivered, but its age is not delivery lag.
    const late = subscribe('graphql-ws', t.url, TallyUpdatedDocument, { competitionId: createCompetition.id }, admin);
    await late.waitFor((r) => r.data?.tallyUpdated.totalVotes === 20);
    const joined = await scrape(t.url, METRICS_TOKEN);
    const since = (name: string) =>
      valueOf(joined, name, { field: 'tallyUpdated' }) - valueOf(after, name, { field: 'tallyUpdated' });
    expect(since('ovation_events_delivered_total')).toBe(1);
    expect(since('ovation_delivery_lag_seconds_count')).toBe(0);
    await late.close();

    await watcher.close();
    await expect
      .poll(async () => valueOf(await scrape(t.url, METRICS_TOKEN), 'ovation_subscriptions', { field: 'tallyUpdated' }))
      .toBe(0);
  });

  it('ovation_connections and presence count the same connections, from one registry: streams, not queries answered over SSE', async () => {
    const userId = `conn-${backend.name}`;
    const token = await tokenFor({ sub: userId });
    const counts = async () => {
      const metrics = await scrape(t.url, METRICS_TOKEN);
      const presence = dataOf(await gql(PresenceDocument, { userIds: [userId] })).presence[0]!.connections;
      return [
        presence,
        ...(['ws', 'sse', 'graphql-sse'] as const).map((transport) =>
          valueOf(metrics, 'ovation_connections', { transport }),
        ),
      ];
    };
    await expect.poll(counts).toEqual([0, 0, 0, 0]); // the previous test's sockets close
    // Queries answered over SSE, on either endpoint, end at once: not connections, and nothing left counted.
    for (const path of ['/graphql', '/graphql/stream']) {
      const response = await fetch(`${t.url}${path}?query=${encodeURIComponent('{ __typename }')}`, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('"__typename":"Query"');
    }
    expect(await counts()).toEqual([0, 0, 0, 0]);

    const feeds = (['graphql-ws', 'sse', 'graphql-sse'] as const).map((transport) =>
      subscribe(transport, t.url, PresenceChangedDocument, { userIds: [userId] }, token),
    );
    try {
      await Promise.all(feeds.map((f) => f.waitFor((r) => r.data !== undefined)));
      await expect.poll(counts).toEqual([3, 1, 1, 1]);
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
    }
    await expect.poll(counts).toEqual([0, 0, 0, 0]);
  });
});
