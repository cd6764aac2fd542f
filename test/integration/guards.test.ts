/**
 * Guards declared on the field definition, through HTTP: mutations that had no rate rule before
 * guards were part of the definition are now counted, each rule name on its own, and a refused
 * call changes nothing. The limiter itself (atomicity across instances, escalation, per-IP
 * budgets) is covered by rate-limit.test.ts; the table of every mutation's rule by
 * test/unit/guards.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ControlSessionDocument,
  CreateCompetitionDocument,
  CreateSessionDocument,
  CreateSubmissionDocument,
  MeDocument,
  MyPledgesDocument,
  PledgeDocument,
  SessionDocument,
} from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';

const MUTATIONS_PER_MINUTE = 5;
const PLEDGES_PER_MINUTE = 2;

describe('rate rules declared on the field definition', () => {
  let t: TestApp;
  let admin: string;
  let competitionId: string;
  let submissionIds: string[];
  const gql = <R, V>(doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string) =>
    execute(fetch, t.graphqlUrl, doc, variables, token);

  beforeAll(async () => {
    t = await startTestApp(
      {
        RATE_LIMIT_MUTATIONS_PER_MINUTE: String(MUTATIONS_PER_MINUTE),
        RATE_LIMIT_PLEDGES_PER_MINUTE: String(PLEDGES_PER_MINUTE),
      },
      { postgres: true },
    );
    admin = await tokenFor({ sub: 'guards-admin', role: 'ADMIN' });
    // Three calls of the `competitions` rule.
    competitionId = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Guards', votingMethod: 'SIMPLE' } }, admin),
    ).createCompetition.id;
    submissionIds = [];
    for (const title of ['S0', 'S1']) {
      submissionIds.push(
        dataOf(await gql(CreateSubmissionDocument, { input: { competitionId, title } }, admin)).createSubmission.id,
      );
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  it(`controlSession: RATE_LIMITED past ${MUTATIONS_PER_MINUTE} calls of the sessions rule a minute, and the refused call does nothing`, async () => {
    const { createSession } = dataOf(
      await gql(CreateSessionDocument, { input: { competitionId, submissionIds, presentationSeconds: 60 } }, admin),
    );
    const sessionId = createSession.id;
    const control = (action: 'START' | 'EXTEND_TIMER') =>
      gql(
        ControlSessionDocument,
        { input: { sessionId, action, ...(action === 'EXTEND_TIMER' && { seconds: 10 }) } },
        admin,
      );
    // createSession was the first call of the rule; four more are admitted.
    let last = dataOf(await control('START')).controlSession;
    for (let i = 0; i < MUTATIONS_PER_MINUTE - 2; i += 1) last = dataOf(await control('EXTEND_TIMER')).controlSession;

    const refused = await control('EXTEND_TIMER');
    expect(refused.data).toBeNull();
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      rule: 'sessions',
      limit: MUTATIONS_PER_MINUTE,
      windowMs: 60_000,
    });
    expect(refused.errors?.[0]?.extensions?.['retryAfterMs']).toBeGreaterThan(0);
    const now = dataOf(await gql(SessionDocument, { id: sessionId })).session;
    expect(now).toMatchObject({ seq: last.seq, timerEndsAt: last.timerEndsAt });

    // Another rule of the same admin (competitions: three calls so far) has its own count.
    expect(
      dataOf(await gql(CreateSubmissionDocument, { input: { competitionId, title: 'S2' } }, admin)).createSubmission.id,
    ).toBeTruthy();
  });

  it(`pledge: its own budget (RATE_LIMIT_PLEDGES_PER_MINUTE = ${PLEDGES_PER_MINUTE}), per user`, async () => {
    // Another admin: the first one may have spent its `sessions` budget above.
    const otherAdmin = await tokenFor({ sub: 'guards-admin-2', role: 'ADMIN' });
    const { createSession } = dataOf(
      await gql(
        CreateSessionDocument,
        { input: { competitionId, submissionIds, presentationSeconds: 60 } },
        otherAdmin,
      ),
    );
    const sessionId = createSession.id;
    const backer = await tokenFor({ sub: 'guards-backer' });
    dataOf(await gql(MeDocument, {}, backer));
    const pledge = (amount: number, token = backer) =>
      gql(PledgeDocument, { input: { sessionId, submissionId: submissionIds[0]!, amount } }, token);
    for (let amount = 1; amount <= PLEDGES_PER_MINUTE; amount += 1) dataOf(await pledge(amount));

    const refused = await pledge(50);
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      rule: 'pledges',
      limit: PLEDGES_PER_MINUTE,
    });
    expect(dataOf(await gql(MyPledgesDocument, { sessionId }, backer)).myPledges.pledged).toBe(PLEDGES_PER_MINUTE);

    const other = await tokenFor({ sub: 'guards-other-backer' });
    dataOf(await gql(MeDocument, {}, other));
    expect(dataOf(await pledge(3, other)).pledge.amount).toBe(3);
  });
});
