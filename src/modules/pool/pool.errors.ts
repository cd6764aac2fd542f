/** The investment pool's expected failures (thin wrappers over the catalogue in src/errors.ts). */
import { AppError, ErrorCode } from '../../errors.js';

/**
 * The pledge would take the caller's total in the session over its budget. `remaining` is what the
 * caller has not pledged yet (budget minus the current total, before this request).
 */
export const budgetExceeded = (sessionId: string, budget: number, remaining: number): AppError =>
  new AppError(
    ErrorCode.BUDGET_EXCEEDED,
    `This pledge exceeds your budget of ${budget} in session ${sessionId}; ${remaining} left`,
    {
      sessionId,
      budget,
      remaining,
    },
  );
