/**
 * Who may do what: every root operation × {anonymous, AUDIENCE, FOUNDER, JUDGE, ADMIN}, each
 * either allowed (no UNAUTHENTICATED or FORBIDDEN; other failures such as NOT_FOUND or CONFLICT
 * are the operation's own business) or refused with the exact code. Queries and mutations go over
 * HTTP; subscriptions through Yoga's own pipeline (`getEnveloped().subscribe`, what every transport
 * runs), where "allowed" means the stream started, checked when the subscription starts (scope-auth
 * with authorizeOnSubscribe, and the services' ownership checks). A root field missing from the
 * table fails the test, so a new operation cannot slip in without its row.
 */
import { getOperationAST, parse, type ExecutionResult } from 'graphql';
import { isAsyncIterable } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { tokenFor } from '../support/graphql.js';

const ROLES = ['anonymous', 'AUDIENCE', 'FOUNDER', 'JUDGE', 'ADMIN'] as const;
type Who = (typeof ROLES)[number];
type Outcome = 'ok' | 'UNAUTHENTICATED' | 'FORBIDDEN';
type Expect = Record<Who, Outcome>;
const AUTH_CODES = new Set(['UNAUTHENTICATED', 'FORBIDDEN']);

const PUBLIC: Expect = { anonymous: 'ok', AUDIENCE: 'ok', FOUNDER: 'ok', JUDGE: 'ok', ADMIN: 'ok' };
const SIGNED_IN: Expect = { ...PUBLIC, anonymous: 'UNAUTHENTICATED' };
const ADMIN_ONLY: Expect = {
  anonymous: 'UNAUTHENTICATED',
  AUDIENCE: 'FORBIDDEN',
  FOUNDER: 'FORBIDDEN',
  JUDGE: 'FORBIDDEN',
  ADMIN: 'ok',
};
/** The founder and the judge are the participants of the fixture conversations; nobody else, ADMIN included. */
const PARTICIPANTS: Expect = {
  anonymous: 'UNAUTHENTICATED',
  AUDIENCE: 'FORBIDDEN',
  FOUNDER: 'ok',
  JUDGE: 'ok',
  ADMIN: 'FORBIDDEN',
};

/** The ids every row may use, created by an ADMIN and the fixture users before the table runs. */
interface Fixtures {
  competitionId: string;
  draftCompetitionId: string;
  closableCompetitionId: string;
  submissionIds: string[];
  sessionId: string;
  offerId: string;
  withdrawableOfferId: string;
  directId: string;
  messageId: string;
  groupId: string;
  leavableGroupId: string;
  userIds: Record<Exclude<Who, 'anonymous'>, string>;
}

interface Row {
  op: string;
  query: string;
  variables?: (f: Fixtures) => Record<string, unknown>;
  expect: Expect;
}

const rows: Row[] = [
  // ------------------------------------------------------------------------------ queries
  { op: 'me', query: 'query { me { id } }', expect: PUBLIC },
  {
    op: 'competition',
    query: 'query($id: ID!) { competition(id: $id) { id } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: PUBLIC,
  },
  { op: 'competitions', query: 'query { competitions(first: 5) { id } }', expect: PUBLIC },
  {
    op: 'leaderboard',
    query: 'query($id: ID!) { leaderboard(competitionId: $id) { rank } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: PUBLIC,
  },
  {
    op: 'session',
    query: 'query($id: ID!) { session(id: $id) { id } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'sessions',
    query: 'query($id: ID!) { sessions(competitionId: $id) { id } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: PUBLIC,
  },
  {
    op: 'offers',
    query: 'query($id: ID!) { offers(submissionId: $id) { id } }',
    variables: (f) => ({ id: f.submissionIds[0] }),
    expect: PUBLIC,
  },
  {
    op: 'offer',
    query: 'query($id: ID!) { offer(id: $id) { id } }',
    variables: (f) => ({ id: f.offerId }),
    expect: PUBLIC,
  },
  {
    op: 'investmentPool',
    query: 'query($id: ID!) { investmentPool(sessionId: $id) { seq } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'myPledges',
    query: 'query($id: ID!) { myPledges(sessionId: $id) { budget } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: SIGNED_IN,
  },
  {
    op: 'reactionStats',
    query: 'query($id: ID!) { reactionStats(sessionId: $id) { total } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'liveDashboard',
    query: 'query($id: ID!) { liveDashboard(competitionId: $id) { totalVotes } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'conversation',
    query: 'query($id: ID!) { conversation(id: $id) { id } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  { op: 'conversations', query: 'query { conversations { id } }', expect: SIGNED_IN },
  {
    op: 'presence',
    query: 'query($ids: [ID!]!) { presence(userIds: $ids) { status } }',
    variables: (f) => ({ ids: [f.userIds.FOUNDER] }),
    expect: PUBLIC,
  },
  { op: 'following', query: 'query { following { id } }', expect: SIGNED_IN },
  { op: 'followers', query: 'query { followers { id } }', expect: SIGNED_IN },
  { op: 'onlineFollowing', query: 'query { onlineFollowing { userId } }', expect: SIGNED_IN },
  { op: 'notifications', query: 'query { notifications { id } }', expect: SIGNED_IN },
  { op: 'fraudAlerts', query: 'query { fraudAlerts(first: 1) { id } }', expect: ADMIN_ONLY },
  { op: 'fraudStats', query: 'query { fraudStats { __typename } }', expect: ADMIN_ONLY },
  { op: 'serverStats', query: 'query { serverStats { __typename } }', expect: ADMIN_ONLY },
  {
    op: 'channelEvents (public channel)',
    query: 'query { channelEvents(channel: "lobby") { hasMore } }',
    expect: PUBLIC,
  },
  {
    op: 'channelEvents (admin:*)',
    query: 'query { channelEvents(channel: "admin:ops") { hasMore } }',
    expect: ADMIN_ONLY,
  },
  // Polling fallbacks of the resumable streams: who may poll is who may subscribe.
  {
    op: 'tally',
    query: 'query($id: ID!) { tally(competitionId: $id) { seq } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: PUBLIC,
  },
  {
    op: 'reactionEvents',
    query: 'query($id: ID!) { reactionEvents(sessionId: $id) { cursor } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'offerEvents',
    query: 'query($id: ID!) { offerEvents(sessionId: $id) { cursor } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'messageEvents',
    query: 'query($id: ID!) { messageEvents(conversationId: $id) { cursor } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'readReceiptEvents',
    query: 'query($id: ID!) { readReceiptEvents(conversationId: $id) { cursor } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  { op: 'notificationEvents', query: 'query { notificationEvents { cursor } }', expect: SIGNED_IN },
  { op: 'fraudAlertEvents', query: 'query { fraudAlertEvents { cursor } }', expect: ADMIN_ONLY },

  // ---------------------------------------------------------------------------- mutations
  {
    op: 'createCompetition',
    query: 'mutation { createCompetition(input: { title: "T", votingMethod: SIMPLE }) { id } }',
    expect: ADMIN_ONLY,
  },
  {
    op: 'createSubmission',
    query: 'mutation($id: ID!) { createSubmission(input: { competitionId: $id, title: "S" }) { id } }',
    variables: (f) => ({ id: f.draftCompetitionId }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'openCompetition',
    query: 'mutation($id: ID!) { openCompetition(id: $id) { id } }',
    variables: (f) => ({ id: f.draftCompetitionId }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'closeCompetition',
    query: 'mutation($id: ID!) { closeCompetition(id: $id) { id } }',
    variables: (f) => ({ id: f.closableCompetitionId }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'castVote',
    query: 'mutation($c: ID!, $s: ID!) { castVote(input: { competitionId: $c, submissionId: $s }) { vote { id } } }',
    variables: (f) => ({ c: f.competitionId, s: f.submissionIds[1] }),
    expect: SIGNED_IN,
  },
  {
    op: 'createSession',
    query:
      'mutation($c: ID!, $s: [ID!]!) { createSession(input: { competitionId: $c, submissionIds: $s, presentationSeconds: 60 }) { id } }',
    variables: (f) => ({ c: f.competitionId, s: f.submissionIds }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'controlSession',
    query: 'mutation($id: ID!) { controlSession(input: { sessionId: $id, action: EXTEND_TIMER, seconds: 1 }) { id } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'sendReaction',
    query: 'mutation($id: ID!) { sendReaction(input: { sessionId: $id, type: CLAP, intensity: 3 }) }',
    variables: (f) => ({ id: f.sessionId }),
    expect: SIGNED_IN,
  },
  {
    op: 'makeOffer',
    query:
      'mutation($x: ID!, $s: ID!) { makeOffer(input: { sessionId: $x, submissionId: $s, type: EQUITY, amount: 1000, equityPercentage: 5 }) { id } }',
    variables: (f) => ({ x: f.sessionId, s: f.submissionIds[2] }),
    expect: {
      anonymous: 'UNAUTHENTICATED',
      AUDIENCE: 'FORBIDDEN',
      FOUNDER: 'FORBIDDEN',
      JUDGE: 'ok',
      ADMIN: 'FORBIDDEN',
    },
  },
  {
    op: 'respondToOffer (the founder of the submission)',
    query: 'mutation($id: ID!) { respondToOffer(input: { offerId: $id, response: REJECT }) { id } }',
    variables: (f) => ({ id: f.offerId }),
    expect: {
      anonymous: 'UNAUTHENTICATED',
      AUDIENCE: 'FORBIDDEN',
      FOUNDER: 'ok',
      JUDGE: 'FORBIDDEN',
      ADMIN: 'FORBIDDEN',
    },
  },
  {
    op: 'withdrawOffer (its author)',
    query: 'mutation($id: ID!) { withdrawOffer(offerId: $id) { id } }',
    variables: (f) => ({ id: f.withdrawableOfferId }),
    expect: {
      anonymous: 'UNAUTHENTICATED',
      AUDIENCE: 'FORBIDDEN',
      FOUNDER: 'FORBIDDEN',
      JUDGE: 'ok',
      ADMIN: 'FORBIDDEN',
    },
  },
  {
    op: 'pledge (not on your own submission)',
    query: 'mutation($x: ID!, $s: ID!) { pledge(input: { sessionId: $x, submissionId: $s, amount: 1 }) { amount } }',
    variables: (f) => ({ x: f.sessionId, s: f.submissionIds[0] }),
    expect: { ...SIGNED_IN, FOUNDER: 'FORBIDDEN' },
  },
  {
    op: 'createConversation',
    query: 'mutation($ids: [ID!]!) { createConversation(participantIds: $ids, title: "x") { id } }',
    variables: (f) => ({ ids: [f.userIds.AUDIENCE, f.userIds.JUDGE] }),
    expect: SIGNED_IN,
  },
  {
    op: 'sendMessage',
    query: 'mutation($id: ID!) { sendMessage(input: { conversationId: $id, body: "hi" }) { id } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'markConversationRead',
    query:
      'mutation($id: ID!, $m: ID!) { markConversationRead(conversationId: $id, upToMessageId: $m) { conversationId } }',
    variables: (f) => ({ id: f.directId, m: f.messageId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'setTyping',
    query: 'mutation($id: ID!) { setTyping(conversationId: $id, isTyping: true) }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'addParticipants',
    query: 'mutation($id: ID!, $u: [ID!]!) { addParticipants(conversationId: $id, userIds: $u) { id } }',
    variables: (f) => ({ id: f.groupId, u: [f.userIds.AUDIENCE] }),
    expect: PARTICIPANTS,
  },
  {
    // The founder created the group; the judge is removed by the founder's call, then is no participant.
    op: 'removeParticipant (the creator, or an ADMIN)',
    query: 'mutation($id: ID!, $u: ID!) { removeParticipant(conversationId: $id, userId: $u) { id } }',
    variables: (f) => ({ id: f.groupId, u: f.userIds.JUDGE }),
    expect: { anonymous: 'UNAUTHENTICATED', AUDIENCE: 'FORBIDDEN', FOUNDER: 'ok', JUDGE: 'FORBIDDEN', ADMIN: 'ok' },
  },
  {
    op: 'leaveConversation',
    query: 'mutation($id: ID!) { leaveConversation(conversationId: $id) }',
    variables: (f) => ({ id: f.leavableGroupId }),
    expect: PARTICIPANTS,
  },
  { op: 'setPresence', query: 'mutation { setPresence(status: AWAY) { status } }', expect: SIGNED_IN },
  {
    op: 'follow',
    query: 'mutation($u: ID!) { follow(userId: $u) { id } }',
    variables: (f) => ({ u: f.userIds.JUDGE }),
    expect: SIGNED_IN,
  },
  {
    op: 'unfollow',
    query: 'mutation($u: ID!) { unfollow(userId: $u) { id } }',
    variables: (f) => ({ u: f.userIds.JUDGE }),
    expect: SIGNED_IN,
  },
  { op: 'markNotificationsRead', query: 'mutation { markNotificationsRead(ids: []) }', expect: SIGNED_IN },
  {
    op: 'sendNotification',
    query: 'mutation($u: ID!) { sendNotification(input: { userId: $u, type: "t", title: "hello" }) { id } }',
    variables: (f) => ({ u: f.userIds.AUDIENCE }),
    expect: ADMIN_ONLY,
  },
  { op: 'announce', query: 'mutation { announce(input: { title: "all" }) }', expect: ADMIN_ONLY },
  {
    op: 'publishToChannel',
    query: 'mutation { publishToChannel(channel: "lobby", type: "t") { seq } }',
    expect: ADMIN_ONLY,
  },
  {
    op: 'walletChallenge',
    query: 'mutation { walletChallenge(publicKey: "11111111111111111111111111111111") { nonce } }',
    expect: PUBLIC,
  },
  {
    op: 'walletSignIn',
    query: 'mutation { walletSignIn(publicKey: "11111111111111111111111111111111", signature: "1") { token } }',
    expect: PUBLIC,
  },
  {
    op: 'setUserRole',
    query: 'mutation($u: ID!) { setUserRole(userId: $u, role: AUDIENCE) { id } }',
    variables: () => ({ u: 'authz-bystander' }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'disableUser',
    query: 'mutation($u: ID!) { disableUser(userId: $u) { id } }',
    variables: () => ({ u: 'authz-bystander' }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'enableUser',
    query: 'mutation($u: ID!) { enableUser(userId: $u) { id } }',
    variables: () => ({ u: 'authz-bystander' }),
    expect: ADMIN_ONLY,
  },

  // ------------------------------------------------------------------------ subscriptions
  {
    op: 'tallyUpdated',
    query: 'subscription($id: ID!) { tallyUpdated(competitionId: $id) { seq } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: PUBLIC,
  },
  {
    op: 'sessionUpdated',
    query: 'subscription($id: ID!) { sessionUpdated(sessionId: $id) { seq } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'reactions',
    query: 'subscription($id: ID!) { reactions(sessionId: $id) { seq } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'offerUpdated',
    query: 'subscription($id: ID!) { offerUpdated(sessionId: $id) { id } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'investmentPoolUpdated',
    query: 'subscription($id: ID!) { investmentPoolUpdated(sessionId: $id) { seq } }',
    variables: (f) => ({ id: f.sessionId }),
    expect: PUBLIC,
  },
  {
    op: 'dashboardUpdated',
    query: 'subscription($id: ID!) { dashboardUpdated(competitionId: $id) { totalVotes } }',
    variables: (f) => ({ id: f.competitionId }),
    expect: ADMIN_ONLY,
  },
  {
    op: 'messageAdded',
    query: 'subscription($id: ID!) { messageAdded(conversationId: $id) { id } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'readReceiptUpdated',
    query: 'subscription($id: ID!) { readReceiptUpdated(conversationId: $id) { conversationId } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'typing',
    query: 'subscription($id: ID!) { typing(conversationId: $id) { isTyping } }',
    variables: (f) => ({ id: f.directId }),
    expect: PARTICIPANTS,
  },
  {
    op: 'presenceChanged',
    query: 'subscription($ids: [ID!]!) { presenceChanged(userIds: $ids) { status } }',
    variables: (f) => ({ ids: [f.userIds.FOUNDER] }),
    expect: PUBLIC,
  },
  { op: 'followingPresenceChanged', query: 'subscription { followingPresenceChanged { status } }', expect: SIGNED_IN },
  // Always the viewer's own: there is no argument that could name somebody else.
  { op: 'notificationAdded', query: 'subscription { notificationAdded { id } }', expect: SIGNED_IN },
  { op: 'fraudAlertRaised', query: 'subscription { fraudAlertRaised { id } }', expect: ADMIN_ONLY },
  { op: 'serverStatsUpdated', query: 'subscription { serverStatsUpdated { __typename } }', expect: ADMIN_ONLY },
  {
    op: 'channelEvent (public channel)',
    query: 'subscription { channelEvent(channel: "lobby") { seq } }',
    expect: PUBLIC,
  },
  {
    op: 'channelEvent (admin:*)',
    query: 'subscription { channelEvent(channel: "admin:ops") { seq } }',
    expect: ADMIN_ONLY,
  },
];

describe('authorization of every operation', () => {
  let t: TestApp;
  let fx: Fixtures;
  const tokens = {} as Record<Who, string | undefined>;

  /** Over HTTP; the result's error codes. */
  async function http(
    query: string,
    variables: Record<string, unknown>,
    token: string | undefined,
  ): Promise<ExecutionResult> {
    const response = await fetch(t.graphqlUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        ...(token && { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as ExecutionResult;
  }
  async function data<T = Record<string, { id: string }>>(
    query: string,
    variables: Record<string, unknown>,
    token: string | undefined,
  ): Promise<T> {
    const result = await http(query, variables, token);
    if (result.errors?.length) throw new Error(`fixture failed: ${JSON.stringify(result.errors)}`);
    return result.data as T;
  }

  /** Through Yoga's pipeline, like every transport: the codes of a refused start, [] once the stream runs (then it is closed). */
  async function subscribeCodes(
    query: string,
    variables: Record<string, unknown>,
    token: string | undefined,
  ): Promise<unknown[]> {
    const request = new Request(t.graphqlUrl, {
      method: 'POST',
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const enveloped = t.app.yoga.getEnveloped({ request, params: { query, variables } } as never);
    const document = enveloped.parse(query);
    let contextValue: unknown;
    try {
      contextValue = await enveloped.contextFactory();
    } catch (error) {
      return [(error as { code?: unknown }).code];
    }
    const result = (await enveloped.subscribe({
      schema: enveloped.schema,
      document,
      variableValues: variables,
      contextValue,
    })) as ExecutionResult | AsyncIterable<ExecutionResult>;
    if (isAsyncIterable(result)) {
      await result[Symbol.asyncIterator]().return?.();
      return [];
    }
    return (result.errors ?? []).map(
      (e) => e.extensions?.['code'] ?? (e.originalError as { code?: unknown } | undefined)?.code,
    );
  }

  beforeAll(async () => {
    t = await startTestApp({ FRAUD_DETECTION_ENABLED: 'false' }, { postgres: true });
    const ids = {
      AUDIENCE: 'authz-audience',
      FOUNDER: 'authz-founder',
      JUDGE: 'authz-judge',
      ADMIN: 'authz-admin',
    } as const;
    tokens.anonymous = undefined;
    for (const role of ['AUDIENCE', 'FOUNDER', 'JUDGE', 'ADMIN'] as const) {
      tokens[role] = await tokenFor({ sub: ids[role], name: role, role });
      await data('query { me { id } }', {}, tokens[role]); // users exist once signed in
    }
    await data('query { me { id } }', {}, await tokenFor({ sub: 'authz-bystander' }));
    const admin = tokens.ADMIN;
    const founder = tokens.FOUNDER;
    const create = async (title: string) =>
      (
        await data(
          `mutation { createCompetition(input: { title: "${title}", votingMethod: SIMPLE }) { id } }`,
          {},
          admin,
        )
      ).createCompetition!.id;
    const competitionId = await create('Authz');
    const submissionIds: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const { createSubmission } = await data(
        'mutation($c: ID!, $f: ID) { createSubmission(input: { competitionId: $c, title: "S", founderId: $f }) { id } }',
        { c: competitionId, f: ids.FOUNDER },
        admin,
      );
      submissionIds.push(createSubmission!.id);
    }
    await data('mutation($id: ID!) { openCompetition(id: $id) { id } }', { id: competitionId }, admin);
    const closableCompetitionId = await create('Closable');
    await data('mutation($id: ID!) { openCompetition(id: $id) { id } }', { id: closableCompetitionId }, admin);
    const draftCompetitionId = await create('Draft');
    const sessionId = (
      await data(
        'mutation($c: ID!, $s: [ID!]!) { createSession(input: { competitionId: $c, submissionIds: $s, presentationSeconds: 600 }) { id } }',
        { c: competitionId, s: submissionIds },
        admin,
      )
    ).createSession!.id;
    await data(
      'mutation($id: ID!) { controlSession(input: { sessionId: $id, action: START }) { id } }',
      { id: sessionId },
      admin,
    );
    const offer = (s: string) =>
      data(
        'mutation($x: ID!, $s: ID!) { makeOffer(input: { sessionId: $x, submissionId: $s, type: EQUITY, amount: 500, equityPercentage: 2 }) { id } }',
        { x: sessionId, s },
        tokens.JUDGE,
      ).then((d) => d.makeOffer!.id);
    const offerId = await offer(submissionIds[0]!);
    const withdrawableOfferId = await offer(submissionIds[1]!);
    const conversation = (participantIds: string[], title?: string) =>
      data(
        'mutation($p: [ID!]!, $t: String) { createConversation(participantIds: $p, title: $t) { id } }',
        { p: participantIds, t: title ?? null },
        founder,
      ).then((d) => d.createConversation!.id);
    const directId = await conversation([ids.JUDGE]);
    const messageId = (
      await data(
        'mutation($id: ID!) { sendMessage(input: { conversationId: $id, body: "first" }) { id } }',
        { id: directId },
        founder,
      )
    ).sendMessage!.id;
    const groupId = await conversation([ids.JUDGE], 'Group');
    const leavableGroupId = await conversation([ids.JUDGE], 'Leavable');
    fx = {
      competitionId,
      draftCompetitionId,
      closableCompetitionId,
      submissionIds,
      sessionId,
      offerId,
      withdrawableOfferId,
      directId,
      messageId,
      groupId,
      leavableGroupId,
      userIds: ids,
    };
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('has a row for every root field of the schema', () => {
    const schema = t.app.yoga.getEnveloped().schema;
    const fields = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((type) =>
      Object.keys(type?.getFields() ?? {}),
    );
    const covered = new Set(
      rows.map((row) =>
        getOperationAST(parse(row.query))!
          .selectionSet.selections.map((s) => ('name' in s ? s.name?.value : ''))
          .join(),
      ),
    );
    expect(fields.filter((field) => !covered.has(field)).sort()).toEqual([]);
  });

  describe.each(rows)('$op', (row) => {
    it.each(ROLES)('%s', async (who) => {
      const variables = row.variables?.(fx) ?? {};
      const subscription = getOperationAST(parse(row.query))!.operation === 'subscription';
      const codes = subscription
        ? await subscribeCodes(row.query, variables, tokens[who])
        : ((await http(row.query, variables, tokens[who])).errors ?? []).map((e) => e.extensions?.['code']);
      const expected = row.expect[who];
      if (expected === 'ok') expect(codes.filter((code) => AUTH_CODES.has(String(code)))).toEqual([]);
      else expect(codes).toEqual([expected]);
    });
  });
});
