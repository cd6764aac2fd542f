/**
 * Guards are part of every mutation's definition (src/schema/guard-plugin.ts). The table names the
 * rate rule and fraud check of every Mutation field, read from the built schema: a mutation
 * without a row (or a row without its mutation, or a row that disagrees) fails, as in the
 * authorization matrix. Then the order the plugin runs them in, through the real schema with a
 * recording context (scope-auth → rate → fraud → resolver), the pipeline's own order, and the
 * schema refusing to build around a mutation with no rate rule.
 */
import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { execute, parse, type ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.js';
import { AppError, ErrorCode } from '../../src/errors.js';
import { createGuards, type FraudSubject, type GuardSpec } from '../../src/guards/guards.js';
import GuardPlugin, { type GuardExtension } from '../../src/schema/guard-plugin.js';
import { schema } from '../../src/schema/index.js';

const rate = (rule: string): GuardExtension => ({ rate: rule, fraud: null });

/** Every mutation's guards. Rules with their own RATE_LIMIT_* variable: votes, reactions, messages, typing, presence, pledges; the others use the `mutations` budget, each counted on its own. */
const GUARDS: Record<string, GuardExtension> = {
  castVote: { rate: 'votes', fraud: 'vote' },
  sendReaction: { rate: 'reactions', fraud: 'reaction' },
  createCompetition: rate('competitions'),
  createSubmission: rate('competitions'),
  openCompetition: rate('competitions'),
  closeCompetition: rate('competitions'),
  createSession: rate('sessions'),
  controlSession: rate('sessions'),
  makeOffer: rate('offers'),
  respondToOffer: rate('offers'),
  withdrawOffer: rate('offers'),
  pledge: rate('pledges'),
  createConversation: rate('conversations'),
  addParticipants: rate('conversations'),
  removeParticipant: rate('conversations'),
  leaveConversation: rate('conversations'),
  sendMessage: rate('messages'),
  markConversationRead: rate('readReceipts'),
  setTyping: rate('typing'),
  setPresence: rate('presence'),
  follow: rate('presence'),
  unfollow: rate('presence'),
  markNotificationsRead: rate('notifications'),
  sendNotification: rate('notifications'),
  announce: rate('notifications'),
  publishToChannel: rate('channels'),
  walletChallenge: rate('signIn'),
  walletSignIn: rate('signIn'),
  setUserRole: rate('users'),
  disableUser: rate('users'),
  enableUser: rate('users'),
};

const mutationFields = schema.getMutationType()!.getFields();

describe('every mutation declares its guards', () => {
  it('has a row for every Mutation field, and a Mutation field for every row', () => {
    expect(Object.keys(mutationFields).sort()).toEqual(Object.keys(GUARDS).sort());
  });

  it.each(Object.entries(GUARDS))('%s', (name, expected) => {
    expect(mutationFields[name]?.extensions['guard']).toEqual(expected);
  });

  it('every Subscription field counts against the subscriptions rule when it starts (subscription-limits.ts)', () => {
    const fields = Object.values(schema.getSubscriptionType()!.getFields());
    expect(fields.length).toBeGreaterThan(10);
    for (const field of fields)
      expect([field.name, field.extensions['guard']]).toEqual([field.name, { rate: 'subscriptions', fraud: null }]);
  });

  it('every polling query (the fallback of a resumable subscription) counts against the polls rule, every other query against queries', () => {
    const guards = Object.fromEntries(
      Object.values(schema.getQueryType()!.getFields()).map((field) => [field.name, field.extensions['guard']]),
    );
    const polls = { rate: 'polls', fraud: null };
    const queries = { rate: 'queries', fraud: null };
    const polling = [
      'offerEvents',
      'reactionEvents',
      'messageEvents',
      'readReceiptEvents',
      'notificationEvents',
      'fraudAlertEvents',
      'channelEvents',
      'tally',
    ];
    expect(Object.keys(guards).length).toBeGreaterThan(polling.length);
    for (const [name, guard] of Object.entries(guards))
      expect([name, guard]).toEqual([name, polling.includes(name) ? polls : queries]);
  });
});

/** A context whose guards and services record what ran, in order. */
function recordingContext(viewer: { id: string } | null, refuse?: AppError) {
  const log: string[] = [];
  const specs: GuardSpec[] = [];
  const record = (what: string) => () => {
    log.push(what);
    return Promise.resolve({});
  };
  const context = {
    viewer: viewer && { ...viewer, name: viewer.id, role: 'AUDIENCE' },
    clientIp: '127.0.0.1',
    deviceId: null,
    services: {
      guards: {
        run: (_caller: unknown, spec: GuardSpec) => {
          log.push('guards');
          specs.push(spec);
          return refuse ? Promise.reject(refuse) : Promise.resolve();
        },
      },
      voting: { castVote: record('castVote') },
      reactions: { send: record('sendReaction') },
      sessions: { control: record('controlSession') },
    },
  } as unknown as Context;
  return { context, log, specs };
}

const codesOf = (result: ExecutionResult): unknown[] =>
  (result.errors ?? []).map((e) => (e.originalError as AppError | undefined)?.code);

describe('the declaration runs before the resolver', () => {
  const cases: { op: string; document: string; spec: GuardSpec }[] = [
    {
      op: 'castVote',
      document: 'mutation { castVote(input: { competitionId: "c1", ranking: ["s2", "s1"] }) { __typename } }',
      spec: { rate: 'votes', fraud: { kind: 'vote', competitionId: 'c1', submissionIds: ['s2', 's1'], votes: null } },
    },
    {
      op: 'sendReaction',
      document: 'mutation { sendReaction(input: { sessionId: "x1", type: CLAP, intensity: 3 }) }',
      spec: { rate: 'reactions', fraud: { kind: 'reaction', sessionId: 'x1' } },
    },
  ];

  it.each(cases)('$op: rate and fraud subject from the arguments, then the service', async ({ op, document, spec }) => {
    const { context, log, specs } = recordingContext({ id: 'u1' });
    const result = await execute({ schema, document: parse(document), contextValue: context });
    expect(result.errors).toBeUndefined();
    expect(log).toEqual(['guards', op]);
    expect(specs).toEqual([spec]);
  });

  it.each(cases)('$op: refused by scope-auth, the guards never count the call', async ({ document }) => {
    const { context, log } = recordingContext(null);
    const result = await execute({ schema, document: parse(document), contextValue: context });
    expect(codesOf(result)).toEqual([ErrorCode.UNAUTHENTICATED]);
    expect(log).toEqual([]);
  });

  it('a refusing guard stops the call before the service (controlSession, once unguarded)', async () => {
    const { context, log, specs } = recordingContext(
      { id: 'admin' },
      new AppError(ErrorCode.RATE_LIMITED, 'slow down'),
    );
    (context.viewer as { role: string }).role = 'ADMIN';
    const result = await execute({
      schema,
      document: parse('mutation { controlSession(input: { sessionId: "x1", action: PAUSE }) { id } }'),
      contextValue: context,
    });
    expect(codesOf(result)).toEqual([ErrorCode.RATE_LIMITED]);
    expect(specs).toEqual([{ rate: 'sessions' }]);
    expect(log).toEqual(['guards']);
  });
});

describe('the pipeline', () => {
  const subject: FraudSubject = { kind: 'reaction', sessionId: 'x1' };
  const caller = { viewer: null, clientIp: '127.0.0.1', deviceId: null };

  it('counts the rate rule, then checks fraud', async () => {
    const log: string[] = [];
    const guards = createGuards({
      rate: { consume: async (rule) => void log.push(`rate:${rule}`) },
      fraud: { check: async (s) => void log.push(`fraud:${s.kind}`) },
    });
    await guards.run(caller, { rate: 'reactions', fraud: subject });
    await guards.run(caller, { rate: 'sessions' });
    expect(log).toEqual(['rate:reactions', 'fraud:reaction', 'rate:sessions']);
  });

  it('a call over its rate limit is not scored for fraud', async () => {
    const checked: FraudSubject[] = [];
    const guards = createGuards({
      rate: { consume: () => Promise.reject(new AppError(ErrorCode.RATE_LIMITED, 'slow down')) },
      fraud: { check: async (s) => void checked.push(s) },
    });
    await expect(guards.run(caller, { rate: 'reactions', fraud: subject })).rejects.toMatchObject({
      code: ErrorCode.RATE_LIMITED,
    });
    expect(checked).toEqual([]);
  });
});

describe('the schema does not build', () => {
  const newBuilder = () =>
    new SchemaBuilder<{ Context: Context; AuthScopes: { authenticated: boolean } }>({
      plugins: [ScopeAuthPlugin, GuardPlugin],
      scopeAuth: { authScopes: (ctx) => ({ authenticated: ctx.viewer !== null }) },
      guards: { run: () => Promise.resolve() },
      prisma: undefined as never, // the Prisma plugin's option type is global; that plugin is not used here
    });

  it('with a mutation that declares no rate rule', () => {
    const builder = newBuilder();
    builder.queryType({ fields: (t) => ({ ok: t.boolean({ resolve: () => true }) }) });
    builder.mutationType({
      fields: (t) => ({
        // @ts-expect-error `guard` is a required option of every Mutation field
        unguarded: t.boolean({ resolve: () => true }),
      }),
    });
    expect(() => builder.toSchema()).toThrow(/Mutation\.unguarded declares no rate rule/);
  });

  it('with a guard on a subscription field (counted when it starts, by subscription-limits.ts)', () => {
    const builder = newBuilder();
    builder.queryType({ fields: (t) => ({ ok: t.boolean({ resolve: () => true }) }) });
    builder.subscriptionType({
      fields: (t) => ({
        ticks: t.boolean({
          // @ts-expect-error Subscription fields take no `guard`
          guard: { rate: 'ticks' },
          subscribe: async function* () {
            yield true;
          },
          resolve: (value: boolean) => value,
        }),
      }),
    });
    expect(() => builder.toSchema()).toThrow(/Subscription\.ticks: `guard` is for mutation and query fields/);
  });
});
