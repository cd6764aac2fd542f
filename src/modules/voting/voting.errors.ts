import { AppError, ErrorCode, conflict } from '../../errors.js';

export const alreadyVoted = (competitionId: string, submissionId: string): AppError =>
  conflict(`You already voted for submission ${submissionId}`, {
    competitionId,
    submissionId,
    reason: 'ALREADY_VOTED',
  });

export const idempotencyKeyReused = (key: string): AppError =>
  conflict(`idempotencyKey "${key}" was already used for a different vote`, { reason: 'IDEMPOTENCY_KEY_REUSED' });

export const budgetExceeded = (cost: number, credits: number, creditsRemaining: number): AppError =>
  new AppError(
    ErrorCode.BUDGET_EXCEEDED,
    `This ballot would cost ${cost} credits; the budget is ${credits} (${creditsRemaining} left before this change)`,
    { field: 'input.votes', cost, credits, creditsRemaining },
  );
