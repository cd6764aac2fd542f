import { badInput } from '../../errors.js';

/** A pledge sets (not adds) the caller's amount on one submission; 0 removes it. */
export function validatePledgeAmount(amount: number): number {
  if (!Number.isInteger(amount) || amount < 0)
    throw badInput('input.amount', 'input.amount must be a whole number ≥ 0 (0 removes the pledge)');
  return amount;
}
