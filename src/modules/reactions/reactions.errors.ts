import { conflict, notFound, type AppError } from '../../errors.js';
import type { SessionStatus } from '../../generated/prisma/enums.js';

export const sessionNotFound = (sessionId: string): AppError => notFound('EventSession', sessionId);

/** Reactions are accepted only while the session is LIVE (CONFLICT with reason SESSION_NOT_LIVE and the status). */
export const sessionNotLive = (sessionId: string, status: SessionStatus): AppError =>
  conflict(`Session ${sessionId} is ${status}; reactions are accepted only while it is LIVE`, {
    sessionId,
    status,
    reason: 'SESSION_NOT_LIVE',
  });
