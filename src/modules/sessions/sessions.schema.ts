import type { Submission } from '../../generated/prisma/client.js';
import { SessionStatus } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import { SubmissionRef } from '../competitions/competitions.schema.js';
import { SessionAction, remainingMsAt } from './sessions.rules.js';
import type { SessionSubmission, SessionView } from './sessions.events.js';

export const SessionStatusEnum = builder.enumType(SessionStatus, { name: 'SessionStatus' });

const SessionActionEnum = builder.enumType(SessionAction, {
  name: 'SessionAction',
  description:
    "EMERGENCY_STOP ends the session and closes its competition's voting at once; it is accepted in every status.",
});

const toSubmission = (s: SessionSubmission): Submission => ({ ...s, createdAt: new Date(s.createdAt) });

export const EventSessionRef = builder.objectRef<SessionView>('EventSession').implement({
  fields: (t) => ({
    id: t.id({ resolve: (v) => v.event.data.id }),
    competitionId: t.id({ resolve: (v) => v.event.data.competitionId }),
    status: t.field({ type: SessionStatusEnum, resolve: (v) => v.event.data.status }),
    currentSubmission: t.field({
      type: SubmissionRef,
      nullable: true,
      description: 'The submission presenting now (LIVE or PAUSED); null before START and after END.',
      resolve: ({ event: { data } }) => {
        if (data.status !== SessionStatus.LIVE && data.status !== SessionStatus.PAUSED) return null;
        const id = data.submissionIds[data.currentIndex];
        const found = data.submissions.find((s) => s.id === id);
        return found ? toSubmission(found) : null;
      },
    }),
    timerEndsAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: "Server-authoritative end of the current presentation's countdown.",
      resolve: (v) => v.event.data.timerEndsAt,
    }),
    seq: t.int({
      description: 'Per-session event sequence: strictly increasing over transitions; a higher seq is a newer state.',
      resolve: (v) => v.event.seq,
    }),
    runningOrder: t.field({
      type: [SubmissionRef],
      description: 'The submissions in presentation order.',
      resolve: (v) => v.event.data.submissions.map(toSubmission),
    }),
    currentIndex: t.int({
      description: '0-based position of the current submission in runningOrder.',
      resolve: (v) => v.event.data.currentIndex,
    }),
    presentationSeconds: t.int({ resolve: (v) => v.event.data.presentationSeconds }),
    remainingSeconds: t.float({
      nullable: true,
      description:
        'Countdown left at serverTime (never negative); while PAUSED the frozen remainder; null when SCHEDULED or ENDED.',
      resolve: (v) => {
        const { status, timerEndsAt, remainingMs } = v.event.data;
        const left = remainingMsAt(
          { status, timerEndsAt: timerEndsAt === null ? null : Date.parse(timerEndsAt), remainingMs },
          v.now,
        );
        return left === null ? null : left / 1000;
      },
    }),
    serverTime: t.field({
      type: 'DateTime',
      description:
        "The serving instance's clock when this result was produced: clients offset their clock by it to show the countdown.",
      resolve: (v) => new Date(v.now),
    }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (v) => v.event.data.startedAt }),
    endedAt: t.field({ type: 'DateTime', nullable: true, resolve: (v) => v.event.data.endedAt }),
  }),
});

const CreateSessionInput = builder.inputType('CreateSessionInput', {
  fields: (t) => ({
    competitionId: t.id({ required: true }),
    submissionIds: t.idList({
      required: true,
      description: 'The running order: distinct submissions of the competition.',
    }),
    presentationSeconds: t.int({ required: true, description: '1..86400' }),
  }),
});

const ControlSessionInput = builder.inputType('ControlSessionInput', {
  fields: (t) => ({
    sessionId: t.id({ required: true }),
    action: t.field({ type: SessionActionEnum, required: true }),
    seconds: t.int({ description: 'EXTEND_TIMER only: 1..3600 seconds added to the countdown.' }),
    expectedSeq: t.int({
      description:
        'Apply only if the session is still at this seq (the last state the client saw); CONFLICT otherwise.',
    }),
  }),
});

builder.queryFields((t) => ({
  session: t.field({
    type: EventSessionRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.sessions.get(String(id)),
  }),
  sessions: t.field({
    type: [EventSessionRef],
    description: "A competition's sessions, oldest first.",
    args: { competitionId: t.arg.id({ required: true }) },
    resolve: (_root, { competitionId }, ctx) => ctx.services.sessions.list(String(competitionId)),
  }),
}));

builder.mutationFields((t) => ({
  createSession: t.field({
    type: EventSessionRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    guard: { rate: 'sessions' },
    args: { input: t.arg({ type: CreateSessionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.sessions.create({
        competitionId: String(input.competitionId),
        submissionIds: input.submissionIds.map(String),
        presentationSeconds: input.presentationSeconds,
      }),
  }),
  controlSession: t.field({
    type: EventSessionRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    guard: { rate: 'sessions' },
    args: { input: t.arg({ type: ControlSessionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.sessions.control({
        sessionId: String(input.sessionId),
        action: input.action,
        seconds: input.seconds ?? null,
        expectedSeq: input.expectedSeq ?? null,
      }),
  }),
}));

builder.subscriptionField('sessionUpdated', (t) =>
  t.field({
    delivery: { kind: 'snapshot', shared: true },
    type: EventSessionRef,
    description: 'The session now (snapshot), then every later state; everyone may watch.',
    args: { sessionId: t.arg.id({ required: true }) },
    subscribe: (_root, { sessionId }, ctx) => ctx.services.sessions.watch(String(sessionId)),
    resolve: (event, _args, ctx) => ctx.services.sessions.view(event),
  }),
);
