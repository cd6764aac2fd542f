import { conflict, type AppError } from '../../errors.js';

/** An action the session's status does not accept, e.g. "cannot RESUME a LIVE session". */
export const invalidAction = (sessionId: string, action: string, status: string): AppError =>
  conflict(`cannot ${action} a ${status} session (session ${sessionId})`, {
    sessionId,
    status,
    action,
    reason: 'INVALID_TRANSITION',
  });

export const atEndOfRunningOrder = (
  sessionId: string,
  action: string,
  status: string,
  index: number,
  length: number,
): AppError =>
  conflict(
    action === 'NEXT'
      ? `cannot NEXT: the current submission is the last of ${length} in the running order; END the session instead`
      : 'cannot PREVIOUS: the current submission is the first in the running order',
    {
      sessionId,
      status,
      action,
      currentIndex: index,
      reason: action === 'NEXT' ? 'END_OF_RUNNING_ORDER' : 'START_OF_RUNNING_ORDER',
    },
  );

/** The session changed between reading it and writing the transition (e.g. two admins pressed NEXT). */
export const concurrentUpdate = (sessionId: string, action: string, status: string): AppError =>
  conflict(`session ${sessionId} changed while applying ${action}; look at its current state and try again`, {
    sessionId,
    status,
    action,
    reason: 'CONCURRENT_UPDATE',
  });

/** `expectedSeq` no longer matches: the client acted on a state that is not the current one. */
export const staleSeq = (
  sessionId: string,
  action: string,
  status: string,
  expectedSeq: number,
  seq: number,
): AppError =>
  conflict(`session ${sessionId} is at seq ${seq}, not ${expectedSeq}: ${action} was not applied`, {
    sessionId,
    status,
    action,
    seq,
    reason: 'STALE_SEQ',
  });

export const competitionClosed = (competitionId: string, what: string): AppError =>
  conflict(`competition ${competitionId} is CLOSED: cannot ${what}`, {
    competitionId,
    status: 'CLOSED',
    reason: 'COMPETITION_CLOSED',
  });

/** Offers and pledges are refused once a session has ENDED. */
export const sessionEnded = (sessionId: string): AppError =>
  conflict(`Session ${sessionId} has ended`, { sessionId, status: 'ENDED', reason: 'SESSION_ENDED' });
