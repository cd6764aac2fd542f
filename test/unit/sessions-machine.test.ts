/**
 * The session state machine: every (status × action) pair, and the countdown arithmetic with
 * fixed clocks (all times are hand-computed epoch milliseconds).
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import type { SessionStatus } from '../../src/generated/prisma/enums.js';
import {
  applyAction,
  remainingMsAt,
  SESSION_ACTIONS,
  type SessionAction,
  type SessionShape,
  type TimerState,
} from '../../src/modules/sessions/sessions.rules.js';

const T0 = 1_700_000_000_000;
const shape: SessionShape = { id: 's1', presentationSeconds: 120, length: 3 };

const states: Record<SessionStatus, TimerState> = {
  SCHEDULED: {
    status: 'SCHEDULED',
    currentIndex: 0,
    timerEndsAt: null,
    remainingMs: null,
    startedAt: null,
    endedAt: null,
  },
  LIVE: {
    status: 'LIVE',
    currentIndex: 1,
    timerEndsAt: T0 + 60_000,
    remainingMs: null,
    startedAt: T0 - 200_000,
    endedAt: null,
  },
  PAUSED: {
    status: 'PAUSED',
    currentIndex: 1,
    timerEndsAt: null,
    remainingMs: 45_000,
    startedAt: T0 - 200_000,
    endedAt: null,
  },
  ENDED: {
    status: 'ENDED',
    currentIndex: 2,
    timerEndsAt: null,
    remainingMs: null,
    startedAt: T0 - 900_000,
    endedAt: T0 - 1_000,
  },
};

/** Expected status after each action, or the error code. Written out by hand, not derived. */
const table: [SessionStatus, SessionAction, SessionStatus | 'CONFLICT'][] = [
  ['SCHEDULED', 'START', 'LIVE'],
  ['SCHEDULED', 'PAUSE', 'CONFLICT'],
  ['SCHEDULED', 'RESUME', 'CONFLICT'],
  ['SCHEDULED', 'NEXT', 'CONFLICT'],
  ['SCHEDULED', 'PREVIOUS', 'CONFLICT'],
  ['SCHEDULED', 'EXTEND_TIMER', 'CONFLICT'],
  ['SCHEDULED', 'END', 'ENDED'],
  ['SCHEDULED', 'EMERGENCY_STOP', 'ENDED'],
  ['LIVE', 'START', 'CONFLICT'],
  ['LIVE', 'PAUSE', 'PAUSED'],
  ['LIVE', 'RESUME', 'CONFLICT'],
  ['LIVE', 'NEXT', 'LIVE'],
  ['LIVE', 'PREVIOUS', 'LIVE'],
  ['LIVE', 'EXTEND_TIMER', 'LIVE'],
  ['LIVE', 'END', 'ENDED'],
  ['LIVE', 'EMERGENCY_STOP', 'ENDED'],
  ['PAUSED', 'START', 'CONFLICT'],
  ['PAUSED', 'PAUSE', 'CONFLICT'],
  ['PAUSED', 'RESUME', 'LIVE'],
  ['PAUSED', 'NEXT', 'PAUSED'],
  ['PAUSED', 'PREVIOUS', 'PAUSED'],
  ['PAUSED', 'EXTEND_TIMER', 'PAUSED'],
  ['PAUSED', 'END', 'ENDED'],
  ['PAUSED', 'EMERGENCY_STOP', 'ENDED'],
  ['ENDED', 'START', 'CONFLICT'],
  ['ENDED', 'PAUSE', 'CONFLICT'],
  ['ENDED', 'RESUME', 'CONFLICT'],
  ['ENDED', 'NEXT', 'CONFLICT'],
  ['ENDED', 'PREVIOUS', 'CONFLICT'],
  ['ENDED', 'EXTEND_TIMER', 'CONFLICT'],
  ['ENDED', 'END', 'CONFLICT'],
  ['ENDED', 'EMERGENCY_STOP', 'ENDED'],
];

function outcome(
  from: SessionStatus,
  action: SessionAction,
): { status?: SessionStatus; code?: string; error?: AppError } {
  try {
    return { status: applyAction(shape, states[from], action, T0, action === 'EXTEND_TIMER' ? 30 : null).status };
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { code: error.code, error };
  }
}

describe('session transitions', () => {
  it('covers every status × action', () => {
    expect(table).toHaveLength(4 * SESSION_ACTIONS.length);
  });

  it.each(table)('%s + %s → %s', (from, action, expected) => {
    const result = outcome(from, action);
    if (expected === 'CONFLICT') {
      expect(result.code).toBe('CONFLICT');
      expect(result.error?.message).toContain(`cannot ${action} a ${from} session`);
      expect(result.error?.details).toMatchObject({ status: from, action, reason: 'INVALID_TRANSITION' });
    } else {
      expect(result.status).toBe(expected);
    }
  });

  it('says "cannot RESUME a LIVE session"', () => {
    expect(() => applyAction(shape, states.LIVE, 'RESUME', T0)).toThrow(/^cannot RESUME a LIVE session/);
  });

  it('EMERGENCY_STOP on an ENDED session changes nothing (same object)', () => {
    expect(applyAction(shape, states.ENDED, 'EMERGENCY_STOP', T0)).toBe(states.ENDED);
  });

  it.each([
    { action: 'NEXT' as const, index: 2, reason: 'END_OF_RUNNING_ORDER' },
    { action: 'PREVIOUS' as const, index: 0, reason: 'START_OF_RUNNING_ORDER' },
  ])('$action at the end of the running order is CONFLICT ($reason)', ({ action, index, reason }) => {
    for (const from of ['LIVE', 'PAUSED'] as const) {
      try {
        applyAction(shape, { ...states[from], currentIndex: index }, action, T0);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(AppError);
        expect((error as AppError).details).toMatchObject({ status: from, reason, currentIndex: index });
      }
    }
  });

  it('a running order of one allows neither NEXT nor PREVIOUS', () => {
    const one = { ...shape, length: 1 };
    const live = applyAction(one, states.SCHEDULED, 'START', T0);
    expect(() => applyAction(one, live, 'NEXT', T0)).toThrow(/last of 1/);
    expect(() => applyAction(one, live, 'PREVIOUS', T0)).toThrow(/first/);
  });
});

describe('seconds', () => {
  it.each([
    { action: 'EXTEND_TIMER' as const, seconds: null, ok: false },
    { action: 'EXTEND_TIMER' as const, seconds: 0, ok: false },
    { action: 'EXTEND_TIMER' as const, seconds: -5, ok: false },
    { action: 'EXTEND_TIMER' as const, seconds: 3601, ok: false },
    { action: 'EXTEND_TIMER' as const, seconds: 1.5, ok: false },
    { action: 'EXTEND_TIMER' as const, seconds: 1, ok: true },
    { action: 'EXTEND_TIMER' as const, seconds: 3600, ok: true },
    { action: 'PAUSE' as const, seconds: 10, ok: false },
    { action: 'PAUSE' as const, seconds: null, ok: true },
  ])('$action with seconds=$seconds: ok=$ok', ({ action, seconds, ok }) => {
    const run = () => applyAction(shape, states.LIVE, action, T0, seconds);
    if (ok) expect(run).not.toThrow();
    else {
      try {
        run();
        expect.unreachable();
      } catch (error) {
        expect((error as AppError).code).toBe('BAD_USER_INPUT');
        expect((error as AppError).details).toEqual({ field: 'input.seconds' });
      }
    }
  });

  it('checks seconds before the status (BAD_USER_INPUT even on an ENDED session)', () => {
    expect(() => applyAction(shape, states.ENDED, 'EXTEND_TIMER', T0, null)).toThrow(/needs seconds/);
  });
});

describe('countdown arithmetic', () => {
  it('START sets index 0 and timerEndsAt = now + presentationSeconds', () => {
    expect(applyAction(shape, states.SCHEDULED, 'START', T0)).toEqual({
      status: 'LIVE',
      currentIndex: 0,
      timerEndsAt: T0 + 120_000,
      remainingMs: null,
      startedAt: T0,
      endedAt: null,
    });
  });

  it('PAUSE keeps the remaining time and RESUME restores it, however long the pause', () => {
    const started = applyAction(shape, states.SCHEDULED, 'START', T0);
    const paused = applyAction(shape, started, 'PAUSE', T0 + 30_500);
    expect(paused).toMatchObject({ status: 'PAUSED', timerEndsAt: null, remainingMs: 89_500 });
    expect(remainingMsAt(paused, T0 + 10_000_000)).toBe(89_500);
    const resumed = applyAction(shape, paused, 'RESUME', T0 + 600_000);
    expect(resumed).toMatchObject({
      status: 'LIVE',
      timerEndsAt: T0 + 600_000 + 89_500,
      remainingMs: null,
      startedAt: T0,
    });
    expect(remainingMsAt(resumed, T0 + 600_000)).toBe(89_500);
  });

  it('PAUSE after the countdown ran out keeps 0, and RESUME ends it at once', () => {
    const paused = applyAction(shape, states.LIVE, 'PAUSE', T0 + 90_000); // timer ended at T0 + 60 000
    expect(paused.remainingMs).toBe(0);
    expect(applyAction(shape, paused, 'RESUME', T0 + 95_000).timerEndsAt).toBe(T0 + 95_000);
  });

  it('EXTEND_TIMER adds to timerEndsAt while LIVE and to the remainder while PAUSED', () => {
    expect(applyAction(shape, states.LIVE, 'EXTEND_TIMER', T0, 30).timerEndsAt).toBe(T0 + 90_000);
    expect(applyAction(shape, states.PAUSED, 'EXTEND_TIMER', T0 + 999_999, 30)).toMatchObject({
      status: 'PAUSED',
      remainingMs: 75_000,
      timerEndsAt: null,
    });
  });

  it('EXTEND_TIMER after the countdown ran out counts from now, not from the past end', () => {
    // Ran out 40 s ago: adding 30 s gives 30 s from now (not an end still 10 s in the past).
    expect(applyAction(shape, states.LIVE, 'EXTEND_TIMER', T0 + 100_000, 30).timerEndsAt).toBe(T0 + 130_000);
  });

  it('EXTEND_TIMER may not push the countdown past 86400 s', () => {
    const long = { ...states.PAUSED, remainingMs: 86_000_000 };
    expect(applyAction(shape, long, 'EXTEND_TIMER', T0, 400).remainingMs).toBe(86_400_000);
    expect(() => applyAction(shape, long, 'EXTEND_TIMER', T0, 401)).toThrow(/cannot exceed 86400/);
  });

  it('NEXT/PREVIOUS reset the countdown: running while LIVE, frozen full while PAUSED', () => {
    expect(applyAction(shape, states.LIVE, 'NEXT', T0 + 5)).toMatchObject({
      status: 'LIVE',
      currentIndex: 2,
      timerEndsAt: T0 + 5 + 120_000,
    });
    expect(applyAction(shape, states.LIVE, 'PREVIOUS', T0)).toMatchObject({
      currentIndex: 0,
      timerEndsAt: T0 + 120_000,
      remainingMs: null,
    });
    expect(applyAction(shape, states.PAUSED, 'NEXT', T0)).toMatchObject({
      status: 'PAUSED',
      currentIndex: 2,
      timerEndsAt: null,
      remainingMs: 120_000,
    });
  });

  it('END clears the countdown and stamps endedAt', () => {
    expect(applyAction(shape, states.PAUSED, 'END', T0 + 7)).toEqual({
      status: 'ENDED',
      currentIndex: 1,
      timerEndsAt: null,
      remainingMs: null,
      startedAt: T0 - 200_000,
      endedAt: T0 + 7,
    });
  });

  it.each([
    { state: states.SCHEDULED, now: T0, expected: null },
    { state: states.LIVE, now: T0, expected: 60_000 },
    { state: states.LIVE, now: T0 + 59_999, expected: 1 },
    { state: states.LIVE, now: T0 + 61_000, expected: 0 },
    { state: states.PAUSED, now: T0 + 1e9, expected: 45_000 },
    { state: states.ENDED, now: T0, expected: null },
  ])('remaining of $state.status at +$now is $expected', ({ state, now, expected }) => {
    expect(remainingMsAt(state, now)).toBe(expected);
  });
});
