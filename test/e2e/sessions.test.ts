/**
 * A session driven from two server processes sharing PostgreSQL and Redis: a graphql-ws
 * subscriber on one instance and an SSE subscriber on the other receive the snapshot first, then
 * every transition made on either instance, in seq order, each carrying the state its mutation
 * returned. The emergency stop on one instance closes voting for the other at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  ControlSessionDocument,
  CreateSessionDocument,
  SessionUpdatedDocument,
  type ControlSessionInput,
  type ControlSessionMutation,
  type SessionAction,
  type SessionUpdatedSubscription,
} from '../generated/graphql.js';
import { subscribe, type Feed } from '../support/clients.js';
import { codesOf, dataOf, execute, tokenFor } from '../support/graphql.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import type { ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

let cluster: Cluster;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  cluster = await startCluster();
  ({ a, b } = cluster);
});
afterAll(async () => {
  await cluster?.stop();
});

type Event = SessionUpdatedSubscription['sessionUpdated'];
type State = ControlSessionMutation['controlSession'];
const stateOf = (s: Pick<Event, 'seq' | 'status' | 'currentIndex' | 'timerEndsAt' | 'currentSubmission'>) => ({
  seq: s.seq,
  status: s.status,
  currentIndex: s.currentIndex,
  timerEndsAt: s.timerEndsAt,
  currentSubmission: s.currentSubmission?.id ?? null,
});

/** Closing a client must not hide the test's own failure behind the test timeout. */
const closeAll = (feeds: Feed<unknown>[]) =>
  Promise.race([Promise.all(feeds.map((feed) => feed.close())), new Promise((resolve) => setTimeout(resolve, 3_000))]);

describe('a session across two instances', () => {
  it('streams every transition from either instance to graphql-ws and SSE subscribers on both, in seq order', async () => {
    const admin = await tokenFor({ sub: 'e2e-admin', name: 'Admin', role: 'ADMIN' });
    const { competitionId, submissionIds } = await openCompetition(a.graphqlUrl, 3);
    const { createSession } = dataOf(
      await execute(
        fetch,
        a.graphqlUrl,
        CreateSessionDocument,
        { input: { competitionId, submissionIds, presentationSeconds: 90 } },
        admin,
      ),
    );
    const sessionId = createSession.id;

    const feeds: Feed<SessionUpdatedSubscription>[] = [
      subscribe('graphql-ws', a.url, SessionUpdatedDocument, { sessionId }),
      subscribe('sse', b.url, SessionUpdatedDocument, { sessionId }),
    ];
    const expected: ReturnType<typeof stateOf>[] = [stateOf({ ...createSession, currentSubmission: null })];
    let turn = 0;
    const press = async (action: SessionAction, extra: Partial<ControlSessionInput> = {}): Promise<State> => {
      const instance = turn++ % 2 === 0 ? a : b;
      const state = dataOf(
        await execute(
          fetch,
          instance.graphqlUrl,
          ControlSessionDocument,
          { input: { sessionId, action, ...extra } },
          admin,
        ),
      ).controlSession;
      expected.push(stateOf(state));
      return state;
    };
    const seenEverywhere = (seq: number) =>
      Promise.all(feeds.map((feed) => feed.waitFor((r) => (r.data?.sessionUpdated.seq ?? -1) >= seq)));

    try {
      for (const feed of feeds) {
        const first = await feed.waitFor((r) => r.data !== undefined || r.errors !== undefined);
        expect(first.data?.sessionUpdated).toMatchObject({
          id: sessionId,
          seq: 0,
          status: 'SCHEDULED',
          currentSubmission: null,
        });
      }

      // Paced like a host on stage: each transition is seen everywhere before the next one.
      const script: [SessionAction, Partial<ControlSessionInput>?][] = [
        ['START'],
        ['PAUSE'],
        ['EXTEND_TIMER', { seconds: 30 }],
        ['RESUME'],
        ['NEXT'],
        ['PREVIOUS'],
        ['NEXT'],
        ['NEXT'],
        ['EXTEND_TIMER', { seconds: 10 }],
      ];
      for (const [action, extra] of script) {
        const state = await press(action, extra);
        await seenEverywhere(state.seq);
      }
      for (const feed of feeds) {
        expect(feed.results.map((r) => stateOf(r.data!.sessionUpdated))).toEqual(expected);
      }

      // The emergency stop made on B closes voting for votes cast on A right after.
      const voter = await tokenFor({ sub: 'e2e-session-voter' });
      dataOf(
        await execute(
          fetch,
          a.graphqlUrl,
          CastVoteDocument,
          { input: { competitionId, submissionId: submissionIds[0]! } },
          voter,
        ),
      );
      turn = 1;
      const stopped = await press('EMERGENCY_STOP');
      expect(stopped).toMatchObject({ status: 'ENDED', seq: script.length + 1 });
      const late = await execute(
        fetch,
        a.graphqlUrl,
        CastVoteDocument,
        { input: { competitionId, submissionId: submissionIds[1]! } },
        voter,
      );
      expect(codesOf(late)).toEqual(['VOTING_CLOSED']);

      await seenEverywhere(stopped.seq);
      for (const feed of feeds) {
        const states = feed.results.map((r) => stateOf(r.data!.sessionUpdated));
        expect(states).toEqual(expected);
        expect(states.map((s) => s.seq)).toEqual(expected.map((_, i) => i));
      }
    } finally {
      await closeAll(feeds);
    }
  });

  it('a subscriber joining mid-session starts from the current state, then follows transitions from both instances', async () => {
    const admin = await tokenFor({ sub: 'e2e-admin', name: 'Admin', role: 'ADMIN' });
    const { competitionId, submissionIds } = await openCompetition(b.graphqlUrl, 4);
    const { createSession } = dataOf(
      await execute(
        fetch,
        b.graphqlUrl,
        CreateSessionDocument,
        { input: { competitionId, submissionIds, presentationSeconds: 60 } },
        admin,
      ),
    );
    const sessionId = createSession.id;
    const control = (instance: ServerProcess, action: SessionAction) =>
      execute(fetch, instance.graphqlUrl, ControlSessionDocument, { input: { sessionId, action } }, admin).then(
        (r) => dataOf(r).controlSession,
      );
    await control(a, 'START');
    const moved = await control(b, 'NEXT');

    const feeds = [
      subscribe('graphql-sse', a.url, SessionUpdatedDocument, { sessionId }),
      subscribe('graphql-ws', b.url, SessionUpdatedDocument, { sessionId }),
    ];
    try {
      for (const feed of feeds) {
        const first = await feed.waitFor((r) => r.data !== undefined);
        expect(stateOf(first.data!.sessionUpdated)).toEqual(stateOf(moved));
        // Clock sync: the snapshot's countdown is consistent with its server time.
        const { timerEndsAt, serverTime, remainingSeconds } = first.data!.sessionUpdated;
        expect(Date.parse(timerEndsAt!) - Date.parse(serverTime)).toBeCloseTo(remainingSeconds! * 1000, 0);
      }
      // A quick burst: subscribers conflate to the newest state, never go back, end exact.
      let last = moved;
      for (const [i, action] of (['PAUSE', 'NEXT', 'RESUME', 'NEXT', 'END'] as const).entries())
        last = await control(i % 2 ? a : b, action);
      for (const feed of feeds) {
        const final = await feed.waitFor((r) => r.data?.sessionUpdated.seq === last.seq);
        expect(stateOf(final.data!.sessionUpdated)).toEqual(stateOf(last));
        const seqs = feed.results.map((r) => r.data!.sessionUpdated.seq);
        for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      }
    } finally {
      await closeAll(feeds);
    }
  });
});
