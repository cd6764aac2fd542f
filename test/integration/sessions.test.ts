/**
 * Event-day sessions over HTTP on both backends: the whole flow with a server-authoritative
 * countdown, the live stream, validation naming fields, roles, the emergency stop closing voting,
 * and concurrent control presses.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CompetitionDocument,
  ControlSessionDocument,
  CreateCompetitionDocument,
  CreateSessionDocument,
  CreateSubmissionDocument,
  MeDocument,
  SessionDocument,
  SessionsDocument,
  SessionUpdatedDocument,
  type ControlSessionInput,
  type ControlSessionMutation,
  type SessionAction,
} from '../generated/graphql.js';
import { createSessionsService } from '../../src/modules/sessions/sessions.service.js';
import { useTestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { codesOf, dataOf, tokenFor, type GraphQLResponse } from '../support/graphql.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const at = (iso: string | null | undefined): number => Date.parse(iso ?? 'invalid');

describe.each(backends)('sessions on $name', (backend) => {
  const t = useTestApp(backend);
  let admin: string;
  const gql = t.gql;

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'session-admin', name: 'Ada Admin', role: 'ADMIN' });
  });

  /** A DRAFT competition with `n` submissions (ids in creation order). */
  async function competition(n: number, founderId?: string) {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Pitch night', votingMethod: 'SIMPLE' } }, admin),
    );
    const ids: string[] = [];
    for (let i = 0; i < n; i += 1) {
      const input = {
        competitionId: createCompetition.id,
        title: `Startup ${i}`,
        ...(i === 0 && founderId ? { founderId } : {}),
      };
      ids.push(dataOf(await gql(CreateSubmissionDocument, { input }, admin)).createSubmission.id);
    }
    return { competitionId: createCompetition.id, submissionIds: ids };
  }

  async function session(n = 3, presentationSeconds = 120) {
    const c = await competition(n);
    const { createSession } = dataOf(
      await gql(
        CreateSessionDocument,
        { input: { competitionId: c.competitionId, submissionIds: c.submissionIds, presentationSeconds } },
        admin,
      ),
    );
    return { ...c, sessionId: createSession.id };
  }

  const control = (sessionId: string, action: SessionAction, extra: Partial<ControlSessionInput> = {}, token = admin) =>
    gql(ControlSessionDocument, { input: { sessionId, action, ...extra } }, token);
  const ok = async (promise: Promise<GraphQLResponse<ControlSessionMutation>>) => dataOf(await promise).controlSession;
  const competitionStatus = async (id: string) => dataOf(await gql(CompetitionDocument, { id })).competition?.status;

  it('runs a whole event: START opens voting, the countdown survives PAUSE/RESUME/EXTEND, NEXT/PREVIOUS walk the order, END', async () => {
    const founder = await tokenFor({ sub: 'session-founder', name: 'Fay', role: 'FOUNDER' });
    dataOf(await gql(MeDocument, {}, founder));
    const c = await competition(3, 'session-founder');
    const order = [c.submissionIds[2]!, c.submissionIds[0]!, c.submissionIds[1]!];
    const P = 120;

    const created = dataOf(
      await gql(
        CreateSessionDocument,
        { input: { competitionId: c.competitionId, submissionIds: order, presentationSeconds: P } },
        admin,
      ),
    ).createSession;
    expect(created).toMatchObject({
      competitionId: c.competitionId,
      status: 'SCHEDULED',
      seq: 0,
      currentIndex: 0,
      presentationSeconds: P,
      timerEndsAt: null,
      remainingSeconds: null,
      startedAt: null,
      endedAt: null,
      currentSubmission: null,
    });
    expect(created.runningOrder.map((s) => s.id)).toEqual(order);
    expect(created.runningOrder.map((s) => s.founder?.id ?? null)).toEqual([null, 'session-founder', null]);
    const sessionId = created.id;

    // Anyone may watch: an anonymous SSE subscriber gets the snapshot first.
    const feed = subscribe('sse', t.url, SessionUpdatedDocument, { sessionId });
    const returned = new Map<number, ControlSessionMutation['controlSession']>();
    const step = async (action: SessionAction, extra: Partial<ControlSessionInput> = {}) => {
      const result = await ok(control(sessionId, action, extra));
      returned.set(result.seq, result);
      return result;
    };
    try {
      const snapshot = await feed.waitFor((r) => r.data !== undefined);
      expect(snapshot.data?.sessionUpdated).toMatchObject({ id: sessionId, seq: 0, status: 'SCHEDULED' });

      expect(await competitionStatus(c.competitionId)).toBe('DRAFT');
      const live = await step('START');
      expect(live).toMatchObject({ status: 'LIVE', seq: 1, currentIndex: 0, currentSubmission: { id: order[0] } });
      expect(at(live.timerEndsAt) - at(live.startedAt)).toBe(P * 1000);
      expect(live.remainingSeconds).toBeGreaterThan(P - 2);
      expect(live.remainingSeconds).toBeLessThanOrEqual(P);
      expect(at(live.timerEndsAt) - at(live.serverTime)).toBeCloseTo(live.remainingSeconds! * 1000, 6);
      expect(await competitionStatus(c.competitionId)).toBe('OPEN');
      const voter = await tokenFor({ sub: 'session-voter' });
      dataOf(
        await gql(CastVoteDocument, { input: { competitionId: c.competitionId, submissionId: order[0]! } }, voter),
      );

      const paused = await step('PAUSE');
      expect(paused).toMatchObject({ status: 'PAUSED', seq: 2, timerEndsAt: null });
      const frozen = paused.remainingSeconds!;
      expect(frozen).toBeGreaterThan(P - 3);
      expect(frozen).toBeLessThanOrEqual(P);
      await sleep(300);
      const later = dataOf(await gql(SessionDocument, { id: sessionId })).session!;
      expect(later).toMatchObject({ status: 'PAUSED', seq: 2, remainingSeconds: frozen });
      expect(at(later.serverTime)).toBeGreaterThanOrEqual(at(paused.serverTime) + 250);

      const extendedWhilePaused = await step('EXTEND_TIMER', { seconds: 30 });
      expect(extendedWhilePaused).toMatchObject({ status: 'PAUSED', seq: 3, timerEndsAt: null });
      expect(extendedWhilePaused.remainingSeconds).toBeCloseTo(frozen + 30, 6);

      const resumed = await step('RESUME');
      expect(resumed).toMatchObject({ status: 'LIVE', seq: 4 });
      // Resumed with what was left: the pause cost nothing.
      expect(resumed.remainingSeconds).toBeGreaterThan(frozen + 30 - 1);
      expect(resumed.remainingSeconds).toBeLessThanOrEqual(frozen + 30 + 1e-9);

      const extended = await step('EXTEND_TIMER', { seconds: 15 });
      expect(at(extended.timerEndsAt) - at(resumed.timerEndsAt)).toBe(15_000);

      const second = await step('NEXT');
      expect(second).toMatchObject({ status: 'LIVE', currentIndex: 1, currentSubmission: { id: order[1] } });
      expect(at(second.timerEndsAt) - at(second.serverTime)).toBeGreaterThan((P - 2) * 1000);
      expect(at(second.timerEndsAt) - at(second.serverTime)).toBeLessThanOrEqual(P * 1000);
      const third = await step('NEXT');
      expect(third).toMatchObject({ currentIndex: 2, currentSubmission: { id: order[2] } });

      const pastEnd = await control(sessionId, 'NEXT');
      expect(codesOf(pastEnd)).toEqual(['CONFLICT']);
      expect(pastEnd.errors?.[0]?.extensions).toMatchObject({
        status: 'LIVE',
        reason: 'END_OF_RUNNING_ORDER',
        retryable: false,
      });

      expect(await step('PREVIOUS')).toMatchObject({ currentIndex: 1, currentSubmission: { id: order[1] } });

      const wrong = await control(sessionId, 'RESUME');
      expect(codesOf(wrong)).toEqual(['CONFLICT']);
      expect(wrong.errors?.[0]?.message).toMatch(/^cannot RESUME a LIVE session/);
      expect(wrong.errors?.[0]?.extensions).toMatchObject({ status: 'LIVE', reason: 'INVALID_TRANSITION' });

      const ended = await step('END');
      expect(ended).toMatchObject({
        status: 'ENDED',
        timerEndsAt: null,
        remainingSeconds: null,
        currentSubmission: null,
      });
      expect(at(ended.endedAt)).toBeGreaterThanOrEqual(at(ended.startedAt));
      for (const action of ['START', 'RESUME', 'NEXT', 'END'] as const) {
        const after = await control(sessionId, action);
        expect(codesOf(after)).toEqual(['CONFLICT']);
        expect(after.errors?.[0]?.extensions?.['status']).toBe('ENDED');
      }
      // END is not an emergency stop: voting stays open.
      expect(await competitionStatus(c.competitionId)).toBe('OPEN');

      // The stream: snapshot first, then increasing seqs, each carrying exactly the state its
      // mutation returned, ending with the final state.
      const last = await feed.waitFor((r) => r.data?.sessionUpdated.seq === ended.seq);
      expect(last.data?.sessionUpdated.status).toBe('ENDED');
      const seqs = feed.results.map((r) => r.data!.sessionUpdated.seq);
      expect(seqs[0]).toBe(0);
      for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      for (const r of feed.results.slice(1)) {
        const event = r.data!.sessionUpdated;
        const mutation = returned.get(event.seq)!;
        expect({ status: event.status, currentIndex: event.currentIndex, timerEndsAt: event.timerEndsAt }).toEqual({
          status: mutation.status,
          currentIndex: mutation.currentIndex,
          timerEndsAt: mutation.timerEndsAt,
        });
      }

      const { sessions } = dataOf(await gql(SessionsDocument, { competitionId: c.competitionId }));
      expect(sessions).toEqual([{ id: sessionId, status: 'ENDED', seq: ended.seq }]);
      expect(await t.app.services.sessions.status(sessionId)).toBe('ENDED');
    } finally {
      await feed.close();
    }
  });

  it('status() reads through a short cache: another instance sees a change within statusMaxAgeMs', async () => {
    const { sessionId } = await session(2);
    const { prisma } = t.app.database;
    const { bus, competitions } = t.app.services;
    // Another instance: its own cache (on a clock this test moves), never written through by this one.
    let clock = 0;
    const other = createSessionsService({ prisma, bus, competitions, statusMaxAgeMs: 1_000, now: () => clock });
    expect(await other.status(sessionId)).toBe('SCHEDULED');
    expect(await other.status('missing')).toBeNull();
    dataOf(await control(sessionId, 'START'));
    expect(await t.app.services.sessions.status(sessionId)).toBe('LIVE'); // written through at once
    clock += 999;
    expect(await other.status(sessionId)).toBe('SCHEDULED'); // cached...
    clock += 1;
    expect(await other.status(sessionId)).toBe('LIVE'); // ...for at most statusMaxAgeMs
  });

  it.each([
    {
      name: 'empty running order',
      input: (_: Ids) => ({ submissionIds: [] as string[] }),
      field: 'input.submissionIds',
    },
    {
      name: 'duplicate submission',
      input: (c: Ids) => ({ submissionIds: [c.own[0]!, c.own[1]!, c.own[0]!] }),
      field: 'input.submissionIds',
    },
    {
      name: "another competition's submission",
      input: (c: Ids) => ({ submissionIds: [c.own[0]!, c.other[0]!] }),
      field: 'input.submissionIds',
    },
    { name: 'unknown submission', input: (_: Ids) => ({ submissionIds: ['nope'] }), field: 'input.submissionIds' },
    {
      name: 'presentationSeconds 0',
      input: (_: Ids) => ({ presentationSeconds: 0 }),
      field: 'input.presentationSeconds',
    },
    {
      name: 'presentationSeconds 86401',
      input: (_: Ids) => ({ presentationSeconds: 86_401 }),
      field: 'input.presentationSeconds',
    },
  ])('createSession names the field for bad input: $name', async ({ input, field }) => {
    const own = await competition(2);
    const other = await competition(1);
    const ids: Ids = { own: own.submissionIds, other: other.submissionIds };
    const result = await gql(
      CreateSessionDocument,
      {
        input: {
          competitionId: own.competitionId,
          submissionIds: own.submissionIds,
          presentationSeconds: 60,
          ...input(ids),
        },
      },
      admin,
    );
    expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.extensions).toMatchObject({ field, retryable: false });
    expect(dataOf(await gql(SessionsDocument, { competitionId: own.competitionId })).sessions).toEqual([]);
  });

  it('answers NOT_FOUND for unknown competitions and sessions, null for session(id)', async () => {
    expect(
      codesOf(
        await gql(
          CreateSessionDocument,
          { input: { competitionId: 'missing', submissionIds: ['x'], presentationSeconds: 60 } },
          admin,
        ),
      ),
    ).toEqual(['NOT_FOUND']);
    expect(codesOf(await control('missing', 'START'))).toEqual(['NOT_FOUND']);
    expect(codesOf(await gql(SessionsDocument, { competitionId: 'missing' }))).toEqual(['NOT_FOUND']);
    expect(dataOf(await gql(SessionDocument, { id: 'missing' })).session).toBeNull();
    const feed = subscribe('sse', t.url, SessionUpdatedDocument, { sessionId: 'missing' });
    try {
      const first = await feed.waitFor(() => true);
      expect(first.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
    } finally {
      await feed.close();
    }
  });

  it.each([
    { name: 'EXTEND_TIMER without seconds', action: 'EXTEND_TIMER' as const, extra: {}, field: 'input.seconds' },
    { name: 'EXTEND_TIMER 0 s', action: 'EXTEND_TIMER' as const, extra: { seconds: 0 }, field: 'input.seconds' },
    { name: 'EXTEND_TIMER 3601 s', action: 'EXTEND_TIMER' as const, extra: { seconds: 3601 }, field: 'input.seconds' },
    { name: 'seconds on PAUSE', action: 'PAUSE' as const, extra: { seconds: 5 }, field: 'input.seconds' },
    { name: 'negative expectedSeq', action: 'PAUSE' as const, extra: { expectedSeq: -1 }, field: 'input.expectedSeq' },
  ])('controlSession names the field for bad input: $name', async ({ action, extra, field }) => {
    const { sessionId } = await session(2);
    dataOf(await control(sessionId, 'START'));
    const result = await control(sessionId, action, extra);
    expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.extensions?.['field']).toBe(field);
    expect(dataOf(await gql(SessionDocument, { id: sessionId })).session).toMatchObject({ status: 'LIVE', seq: 1 });
  });

  it.each([
    { role: undefined, code: 'UNAUTHENTICATED' },
    { role: 'AUDIENCE', code: 'FORBIDDEN' },
    { role: 'FOUNDER', code: 'FORBIDDEN' },
    { role: 'JUDGE', code: 'FORBIDDEN' },
  ] as const)('only ADMIN controls: $role gets $code', async ({ role, code }) => {
    const { competitionId, submissionIds, sessionId } = await session(2);
    const token = role && (await tokenFor({ sub: `session-${role}`, role }));
    const create = await gql(
      CreateSessionDocument,
      { input: { competitionId, submissionIds, presentationSeconds: 60 } },
      token,
    );
    expect(codesOf(create)).toEqual([code]);
    expect(create.data).toBeNull();
    for (const action of ['START', 'EMERGENCY_STOP'] as const) {
      // (not control(): its default token would stand in for the anonymous `undefined`)
      const result = await gql(ControlSessionDocument, { input: { sessionId, action } }, token);
      expect(codesOf(result)).toEqual([code]);
      expect(result.errors?.[0]?.extensions?.['retryable']).toBe(false);
    }
    // ...while everyone may read.
    expect(dataOf(await gql(SessionDocument, { id: sessionId }, token)).session).toMatchObject({
      status: 'SCHEDULED',
      seq: 0,
    });
    expect(await competitionStatus(competitionId)).toBe('DRAFT');
  });

  it('EMERGENCY_STOP ends the session and closes voting in the same request; pressing it again is harmless', async () => {
    const { competitionId, submissionIds, sessionId } = await session(3);
    dataOf(await control(sessionId, 'START'));
    dataOf(await control(sessionId, 'PAUSE'));
    const voter = await tokenFor({ sub: 'estop-voter' });
    dataOf(await gql(CastVoteDocument, { input: { competitionId, submissionId: submissionIds[0]! } }, voter));

    const stopped = await ok(control(sessionId, 'EMERGENCY_STOP'));
    expect(stopped).toMatchObject({ status: 'ENDED', seq: 3, timerEndsAt: null, remainingSeconds: null });
    expect(await competitionStatus(competitionId)).toBe('CLOSED');
    const late = await gql(
      CastVoteDocument,
      { input: { competitionId, submissionId: submissionIds[1]! } },
      await tokenFor({ sub: 'estop-late' }),
    );
    expect(codesOf(late)).toEqual(['VOTING_CLOSED']);

    const again = await ok(control(sessionId, 'EMERGENCY_STOP'));
    expect(again).toMatchObject({ status: 'ENDED', seq: 3 });
    expect(await competitionStatus(competitionId)).toBe('CLOSED');
  });

  it('a CLOSED competition gets no new sessions and its scheduled sessions cannot START', async () => {
    const { competitionId, submissionIds, sessionId } = await session(2);
    const { createSession: scheduled } = dataOf(
      await gql(CreateSessionDocument, { input: { competitionId, submissionIds, presentationSeconds: 60 } }, admin),
    );
    dataOf(await control(sessionId, 'START'));
    dataOf(await control(sessionId, 'EMERGENCY_STOP'));
    expect(await competitionStatus(competitionId)).toBe('CLOSED');

    const start = await control(scheduled.id, 'START');
    expect(codesOf(start)).toEqual(['CONFLICT']);
    expect(start.errors?.[0]?.extensions).toMatchObject({ status: 'CLOSED', reason: 'COMPETITION_CLOSED' });
    expect(dataOf(await gql(SessionDocument, { id: scheduled.id })).session).toMatchObject({
      status: 'SCHEDULED',
      seq: 0,
    });

    const create = await gql(
      CreateSessionDocument,
      { input: { competitionId, submissionIds, presentationSeconds: 60 } },
      admin,
    );
    expect(codesOf(create)).toEqual(['CONFLICT']);
    expect(create.errors?.[0]?.extensions).toMatchObject({ status: 'CLOSED', reason: 'COMPETITION_CLOSED' });
  });

  it('concurrent NEXT presses never lose or double a move: each success is one step, the rest are CONFLICT', async () => {
    const { sessionId } = await session(10, 60);
    dataOf(await control(sessionId, 'START'));
    const presses = await Promise.all(Array.from({ length: 6 }, () => control(sessionId, 'NEXT')));
    const wins = presses.filter((r) => !r.errors).map((r) => r.data!.controlSession);
    const losses = presses.filter((r) => r.errors);
    expect(wins.length).toBeGreaterThanOrEqual(1);
    for (const loss of losses) {
      expect(codesOf(loss)).toEqual(['CONFLICT']);
      expect(loss.errors?.[0]?.extensions?.['reason']).toBe('CONCURRENT_UPDATE');
    }
    // Every success moved exactly one step from a distinct state.
    expect(new Set(wins.map((w) => w.currentIndex)).size).toBe(wins.length);
    expect(wins.map((w) => w.seq).sort((a, b) => a - b)).toEqual(wins.map((_, i) => 2 + i));
    for (const w of wins) expect(w.currentIndex).toBe(w.seq - 1);
    const now = dataOf(await gql(SessionDocument, { id: sessionId })).session!;
    expect(now).toMatchObject({ currentIndex: wins.length, seq: 1 + wins.length });

    // With expectedSeq the intent is explicit: of presses made from the same state, exactly one applies.
    const fromSeq = now.seq;
    const guarded = await Promise.all(
      Array.from({ length: 5 }, () => control(sessionId, 'NEXT', { expectedSeq: fromSeq })),
    );
    const guardedWins = guarded.filter((r) => !r.errors);
    expect(guardedWins).toHaveLength(1);
    for (const loss of guarded.filter((r) => r.errors)) {
      expect(codesOf(loss)).toEqual(['CONFLICT']);
      expect(['STALE_SEQ', 'CONCURRENT_UPDATE']).toContain(loss.errors?.[0]?.extensions?.['reason']);
    }
    expect(dataOf(await gql(SessionDocument, { id: sessionId })).session).toMatchObject({
      currentIndex: now.currentIndex + 1,
      seq: fromSeq + 1,
    });
  });

  it('concurrent EMERGENCY_STOPs and NEXTs all leave the session ENDED and voting CLOSED', async () => {
    const { competitionId, sessionId } = await session(10, 60);
    dataOf(await control(sessionId, 'START'));
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => control(sessionId, i % 2 === 0 ? 'EMERGENCY_STOP' : 'NEXT')),
    );
    results.forEach((r, i) => {
      if (i % 2 === 0) expect(r.errors).toBeUndefined();
      else if (r.errors) expect(codesOf(r)).toEqual(['CONFLICT']);
    });
    expect(dataOf(await gql(SessionDocument, { id: sessionId })).session?.status).toBe('ENDED');
    expect(await competitionStatus(competitionId)).toBe('CLOSED');
  });
});

interface Ids {
  own: string[];
  other: string[];
}
