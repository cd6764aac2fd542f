/**
 * Fraud: the checks the guards run on votes and reactions (src/guards/fraud: rules, engine, the
 * guard stage) and the alerts they raise (this module's service: stored, published, listed for
 * admins). FRAUD_DETECTION_ENABLED=false: no checks, the alerts service stays for reading.
 */
import { createAccountAge, createdAtFromUsers } from '../../guards/fraud/account-age.js';
import { createFraudEngine, type FraudDecision } from '../../guards/fraud/fraud.engine.js';
import { createFraudGuard, fraudGuardDisabled } from '../../guards/fraud/fraud.guard.js';
import type { FraudGuard } from '../../guards/guards.js';
import type { Module, ModuleContext } from '../module.js';
import type { UserRecords } from '../users/users.service.js';
import { createFraudService, type FraudService } from './fraud.service.js';

export interface FraudModule extends Module<FraudService> {
  /** The guards' fraud stage (auth → rate → fraud). */
  readonly guard: FraudGuard;
}

export function createFraudModule(
  ctx: ModuleContext,
  deps: { records: UserRecords; onDecision?: (decision: FraudDecision) => void },
): FraudModule {
  const { prisma, config, logger } = ctx;
  const store = ctx.stores.fraud;
  const onError = (message: string, details: Record<string, unknown>): void => logger.error(message, details);
  const alerts = createFraudService({
    prisma,
    bus: ctx.bus,
    store,
    resumeWindowSeconds: config.resumeWindowSeconds,
    onError,
  });
  const guard = config.fraudDetectionEnabled
    ? createFraudGuard({
        engine: createFraudEngine({
          store,
          thresholds: { alert: config.fraudAlertThreshold, block: config.fraudBlockThreshold },
          accountCreatedAt: createAccountAge({ load: createdAtFromUsers(prisma, deps.records) }).createdAt,
        }),
        store,
        alerts,
        onError,
        ...(deps.onDecision && { onDecision: deps.onDecision }),
      })
    : fraudGuardDisabled;
  return { service: alerts, guard, close: () => alerts.close() }; // alerts already raised are stored and published
}
