import { conflict, type AppError } from '../../errors.js';

export const alreadyVoted = (competitionId: string, submissionId: string): AppError =>
  conflict(`You already voted for submission ${submissionId}`, { competitionId, submissionId, reason: 'ALREADY_VOTED' });

export const idempotencyKeyReused = (key: string): AppError =>
  conflict(`idempotencyKey "${key}" was already used for a different vote`, { reason: 'IDEMPOTENCY_KEY_REUSED' });
