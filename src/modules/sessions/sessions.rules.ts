/**
 * The session state machine and its countdown arithmetic: pure functions of (state, action, now),
 * no I/O. The service reads a row, computes the next state here and writes it with one
 * compare-and-set UPDATE; unit tests drive these functions with fixed clocks.
 *
 * Times are epoch milliseconds from the JS clock (the service's injected `now()`); the database
 * stores them as timestamp(3) through JS Dates, so nothing here depends on the database's clock.
 */
import { SessionStatus } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';
import { atEndOfRunningOrder, invalidAction } from './sessions.errors.js';

export const SessionAction = {
  START: 'START',
  PAUSE: 'PAUSE',
  RESUME: 'RESUME',
  NEXT: 'NEXT',
  PREVIOUS: 'PREVIOUS',
  EXTEND_TIMER: 'EXTEND_TIMER',
  END: 'END',
  EMERGENCY_STOP: 'EMERGENCY_STOP',
} as const;
export type SessionAction = (typeof SessionAction)[keyof typeof SessionAction];
export const SESSION_ACTIONS: readonly SessionAction[] = Object.values(SessionAction);

export const PRESENTATION_SECONDS_MAX = 86_400;
export const EXTEND_SECONDS_MAX = 3_600;
/** A countdown (remaining time after EXTEND_TIMER) never exceeds this. */
export const COUNTDOWN_MAX_MS = PRESENTATION_SECONDS_MAX * 1000;

/** The mutable part of a session: what a transition reads and writes. */
export interface TimerState {
  status: SessionStatus;
  currentIndex: number;
  /** Epoch ms; set only while LIVE. */
  timerEndsAt: number | null;
  /** Set only while PAUSED: the frozen remainder of the countdown. */
  remainingMs: number | null;
  startedAt: number | null;
  endedAt: number | null;
}

/** The immutable part a transition needs. */
export interface SessionShape {
  id: string;
  presentationSeconds: number;
  /** Length of the running order (≥ 1). */
  length: number;
}

/**
 * Which actions each status accepts and the status they lead to. NEXT/PREVIOUS/EXTEND_TIMER keep
 * the status (a PAUSED session stays paused, with the new presenter's full time frozen, until
 * RESUME). EMERGENCY_STOP is accepted everywhere: on an ENDED session it changes nothing here
 * (the service still closes voting), so pressing it twice never fails.
 */
export const TRANSITIONS: Readonly<Record<SessionStatus, Partial<Record<SessionAction, SessionStatus>>>> = {
  SCHEDULED: { START: 'LIVE', END: 'ENDED', EMERGENCY_STOP: 'ENDED' },
  LIVE: {
    PAUSE: 'PAUSED',
    NEXT: 'LIVE',
    PREVIOUS: 'LIVE',
    EXTEND_TIMER: 'LIVE',
    END: 'ENDED',
    EMERGENCY_STOP: 'ENDED',
  },
  PAUSED: {
    RESUME: 'LIVE',
    NEXT: 'PAUSED',
    PREVIOUS: 'PAUSED',
    EXTEND_TIMER: 'PAUSED',
    END: 'ENDED',
    EMERGENCY_STOP: 'ENDED',
  },
  ENDED: { EMERGENCY_STOP: 'ENDED' },
};

/** What is left of the countdown at `now`: never negative; null when no countdown runs or is paused. */
export function remainingMsAt(
  state: Pick<TimerState, 'status' | 'timerEndsAt' | 'remainingMs'>,
  now: number,
): number | null {
  if (state.status === SessionStatus.LIVE && state.timerEndsAt !== null) return Math.max(0, state.timerEndsAt - now);
  if (state.status === SessionStatus.PAUSED && state.remainingMs !== null) return Math.max(0, state.remainingMs);
  return null;
}

/**
 * The state after `action` at `now`, or throws: CONFLICT for an action the status does not accept
 * (or NEXT/PREVIOUS past the ends of the running order), BAD_USER_INPUT for `seconds`.
 * Returns the same object when nothing changes (EMERGENCY_STOP on an ENDED session).
 */
export function applyAction(
  shape: SessionShape,
  state: TimerState,
  action: SessionAction,
  now: number,
  seconds?: number | null,
): TimerState {
  validateSeconds(action, seconds);
  const to = TRANSITIONS[state.status][action];
  if (to === undefined) throw invalidAction(shape.id, action, state.status);
  const fullMs = shape.presentationSeconds * 1000;

  switch (action) {
    case 'START':
      return {
        status: to,
        currentIndex: 0,
        timerEndsAt: now + fullMs,
        remainingMs: null,
        startedAt: now,
        endedAt: null,
      };
    case 'PAUSE':
      return { ...state, status: to, remainingMs: remainingMsAt(state, now) ?? 0, timerEndsAt: null };
    case 'RESUME':
      return { ...state, status: to, timerEndsAt: now + (state.remainingMs ?? 0), remainingMs: null };
    case 'NEXT':
    case 'PREVIOUS': {
      const index = state.currentIndex + (action === 'NEXT' ? 1 : -1);
      if (index < 0 || index >= shape.length)
        throw atEndOfRunningOrder(shape.id, action, state.status, state.currentIndex, shape.length);
      return to === SessionStatus.LIVE
        ? { ...state, currentIndex: index, timerEndsAt: now + fullMs, remainingMs: null }
        : { ...state, currentIndex: index, timerEndsAt: null, remainingMs: fullMs };
    }
    case 'EXTEND_TIMER': {
      // Added to what is left (never to a countdown that already ran out in the past).
      const left = (remainingMsAt(state, now) ?? 0) + seconds! * 1000;
      if (left > COUNTDOWN_MAX_MS) {
        throw badInput(
          'input.seconds',
          `the countdown cannot exceed ${PRESENTATION_SECONDS_MAX} seconds; it would be ${left / 1000}`,
        );
      }
      return to === SessionStatus.LIVE ? { ...state, timerEndsAt: now + left } : { ...state, remainingMs: left };
    }
    case 'END':
    case 'EMERGENCY_STOP':
      if (state.status === SessionStatus.ENDED) return state;
      return { ...state, status: SessionStatus.ENDED, timerEndsAt: null, remainingMs: null, endedAt: now };
  }
}

/** `seconds` belongs to EXTEND_TIMER only, and is 1..3600 there. */
export function validateSeconds(action: SessionAction, seconds: number | null | undefined): void {
  if (action !== 'EXTEND_TIMER') {
    if (seconds !== null && seconds !== undefined)
      throw badInput('input.seconds', `seconds is only used by EXTEND_TIMER, not ${action}`);
    return;
  }
  if (seconds === null || seconds === undefined)
    throw badInput('input.seconds', 'EXTEND_TIMER needs seconds (1..3600)');
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > EXTEND_SECONDS_MAX) {
    throw badInput('input.seconds', `seconds must be 1..${EXTEND_SECONDS_MAX}, got ${seconds}`);
  }
}
