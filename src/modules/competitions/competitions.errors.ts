import { AppError, ErrorCode, conflict } from '../../errors.js';

export const votingClosed = (competitionId: string, status: string): AppError =>
  new AppError(ErrorCode.VOTING_CLOSED, `Voting is not open for competition ${competitionId} (status ${status})`, {
    competitionId,
    status,
  });

export const invalidTransition = (competitionId: string, from: string, to: string): AppError =>
  conflict(`Competition ${competitionId} cannot go from ${from} to ${to}`, { competitionId, status: from });
