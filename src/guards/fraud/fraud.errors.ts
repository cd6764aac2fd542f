import { AppError, ErrorCode } from '../../errors.js';

/**
 * FRAUD_BLOCKED (retryable: false). Deliberately vague: neither the rule that fired nor any
 * threshold is revealed, so a blocked script learns nothing to tune against. Admins see the
 * details in fraudAlerts.
 */
export const fraudBlocked = (): AppError =>
  new AppError(
    ErrorCode.FRAUD_BLOCKED,
    'This action was not accepted because it looks automated or coordinated. If you think this is a mistake, contact the organisers.',
    { reason: 'SUSPICIOUS_ACTIVITY' },
  );
