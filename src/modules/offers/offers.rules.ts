/**
 * The offer negotiation's pure rules: input validation (terms per offer type) and the transition
 * table (status × action × actor). No I/O: the service feeds in the facts it read under lock.
 *
 * Negotiation: a judge makes an offer (author = judge). The submission's founder ACCEPTs,
 * REJECTs or COUNTERs it; a COUNTER marks it COUNTERED and creates a counter-offer (author =
 * founder, same judge, `counterOfId` = the original). The judge ACCEPTs or REJECTs a counter-offer;
 * a counter-offer cannot be countered again (the judge makes a fresh offer instead), so a
 * negotiation is at most two offers deep. The author may WITHDRAW while PENDING. An offer past
 * its expiresAt is EXPIRED for every purpose, whether or not the sweeper has persisted it yet.
 */
import { OfferStatus, OfferType } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';
import { alreadyAccepted, notAuthor, notResponder, offerExpired, offerNotPending } from './offers.errors.js';

export const MAX_AMOUNT = 1e12;
export const MAX_CONDITIONS = 20;
export const MAX_CONDITION_LENGTH = 500;
export const MAX_EXPIRY_SECONDS = 604_800;
export const DEFAULT_MIN_EXPIRY_SECONDS = 10;
export const MAX_TERM_MONTHS = 600;

export type OfferAction = 'ACCEPT' | 'REJECT' | 'COUNTER' | 'WITHDRAW';

/** PENDING past its expiry reads as EXPIRED everywhere. */
export function effectiveStatus(status: OfferStatus, expiresAt: Date | string | null, now: Date): OfferStatus {
  return status === OfferStatus.PENDING && isPastExpiry(expiresAt, now) ? OfferStatus.EXPIRED : status;
}

export function isPastExpiry(expiresAt: Date | string | null, now: Date): boolean {
  return expiresAt !== null && new Date(expiresAt).getTime() <= now.getTime();
}

// ------------------------------------------------------------------------------- transitions

export interface TransitionFacts {
  id: string;
  status: OfferStatus;
  expiresAt: Date | string | null;
  /** Who made the offer: the judge, or the founder for a counter-offer. */
  authorId: string;
  judgeId: string;
  /** Set on a counter-offer. */
  counterOfId: string | null;
  submissionId: string;
  /** The submission's founder (null: nobody can answer a judge's offer). */
  founderId: string | null;
  /** An ACCEPTED offer on the same submission, if any. */
  acceptedOfferId: string | null;
}

const TARGET: Record<OfferAction, OfferStatus> = {
  ACCEPT: OfferStatus.ACCEPTED,
  REJECT: OfferStatus.REJECTED,
  COUNTER: OfferStatus.COUNTERED,
  WITHDRAW: OfferStatus.WITHDRAWN,
};

/**
 * The status `action` by `actorId` moves the offer to, or the error explaining why it may not.
 * Checks run in this order: who may act (FORBIDDEN), what may be done to this kind of offer
 * (BAD_USER_INPUT), the submission already being settled, then the offer's state (CONFLICT).
 */
export function decideTransition(offer: TransitionFacts, action: OfferAction, actorId: string, now: Date): OfferStatus {
  const isCounter = offer.counterOfId !== null;
  if (action === 'WITHDRAW') {
    if (actorId !== offer.authorId) throw notAuthor(offer.id);
  } else {
    const responder = isCounter ? offer.judgeId : offer.founderId;
    if (responder === null || actorId !== responder) throw notResponder(offer.id, isCounter);
    if (action === 'COUNTER' && isCounter) {
      throw badInput(
        'input.response',
        'A counter-offer cannot be countered: ACCEPT or REJECT it (the judge may then make a new offer)',
      );
    }
    if (action === 'ACCEPT' && offer.acceptedOfferId !== null)
      throw alreadyAccepted(offer.submissionId, offer.acceptedOfferId);
  }
  if (offer.status !== OfferStatus.PENDING) throw offerNotPending(offer.id, offer.status);
  if (isPastExpiry(offer.expiresAt, now)) throw offerExpired(offer.id);
  return TARGET[action];
}

// -------------------------------------------------------------------------------- validation

/** An offer's terms after validation: only the fields its type uses are set. */
export interface OfferTerms {
  type: OfferType;
  amount: number;
  equityPercentage: number | null;
  interestRatePercent: number | null;
  termMonths: number | null;
  royaltyPercent: number | null;
  conditions: string[];
  expiresInSeconds: number | null;
}

export interface RawTerms {
  amount?: number | null | undefined;
  equityPercentage?: number | null | undefined;
  interestRatePercent?: number | null | undefined;
  termMonths?: number | null | undefined;
  royaltyPercent?: number | null | undefined;
  conditions?: readonly string[] | null | undefined;
  expiresInSeconds?: number | null | undefined;
}

type TermField = keyof RawTerms;
/** The input path each term is read from, for BAD_USER_INPUT's `field`. */
export type FieldNames = Record<TermField, string>;

export const MAKE_OFFER_FIELDS: FieldNames = {
  amount: 'input.amount',
  equityPercentage: 'input.equityPercentage',
  interestRatePercent: 'input.interestRatePercent',
  termMonths: 'input.termMonths',
  royaltyPercent: 'input.royaltyPercent',
  conditions: 'input.conditions',
  expiresInSeconds: 'input.expiresInSeconds',
};

export const COUNTER_FIELDS: FieldNames = {
  amount: 'input.counterAmount',
  equityPercentage: 'input.counterEquityPercentage',
  interestRatePercent: 'input.counterInterestRatePercent',
  termMonths: 'input.counterTermMonths',
  royaltyPercent: 'input.counterRoyaltyPercent',
  conditions: 'input.counterConditions',
  expiresInSeconds: 'input.counterExpiresInSeconds',
};

/** The type-specific terms each offer type takes; another type's terms must be absent. */
const TYPE_TERMS: Record<OfferType, readonly TermField[]> = {
  EQUITY: ['equityPercentage'],
  LOAN: ['interestRatePercent', 'termMonths'],
  ROYALTY: ['royaltyPercent'],
};
/**
 * Of those, the ones an offer cannot stand without. An equity offer without its percentage says
 * nothing, and the public contract's MakeOfferInput has equityPercentage. It has no LOAN/ROYALTY
 * terms, so a contract client makes those offers with the amount alone: terms left unset are
 * stored null and read as "to be agreed" (in the conditions, or a counter-offer).
 */
const REQUIRED_TERMS: Record<OfferType, readonly TermField[]> = {
  EQUITY: ['equityPercentage'],
  LOAN: [],
  ROYALTY: [],
};
const ALL_TYPE_TERMS: readonly TermField[] = [
  'equityPercentage',
  'interestRatePercent',
  'termMonths',
  'royaltyPercent',
];

const present = <T>(value: T | null | undefined): value is T => value !== null && value !== undefined;

function finite(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw badInput(field, `${field} must be a finite number`);
  return value;
}

/** 0 < p ≤ 100, or 0 ≤ p ≤ 100 with `allowZero`. */
function percent(field: string, value: number, allowZero = false): number {
  finite(field, value);
  if (allowZero ? value < 0 || value > 100 : value <= 0 || value > 100) {
    throw badInput(field, `${field} must be ${allowZero ? 'between 0 and 100' : 'greater than 0 and at most 100'}`);
  }
  return value;
}

export interface ValidationOptions {
  minExpirySeconds: number;
}

/**
 * Validates an offer's terms for `type`: amount > 0 (finite, ≤ MAX_AMOUNT); EQUITY needs
 * equityPercentage in (0, 100]; LOAN takes interestRatePercent in [0, 100] and termMonths in
 * 1..600, ROYALTY royaltyPercent in (0, 100], each optional (null: to be agreed) and checked when
 * given; terms of other types are rejected; at most 20 conditions of 1..500 characters (trimmed);
 * expiresInSeconds in minExpirySeconds..604800.
 */
export function validateTerms(type: OfferType, raw: RawTerms, fields: FieldNames, opts: ValidationOptions): OfferTerms {
  const own = TYPE_TERMS[type];
  for (const term of ALL_TYPE_TERMS) {
    if (!own.includes(term) && present(raw[term]))
      throw badInput(fields[term], `${fields[term]} does not apply to ${type} offers`);
  }
  for (const term of REQUIRED_TERMS[type]) {
    if (!present(raw[term])) throw badInput(fields[term], `${fields[term]} is required for ${type} offers`);
  }

  if (!present(raw.amount)) throw badInput(fields.amount, `${fields.amount} is required`);
  const amount = finite(fields.amount, raw.amount);
  if (amount <= 0 || amount > MAX_AMOUNT)
    throw badInput(fields.amount, `${fields.amount} must be greater than 0 and at most ${MAX_AMOUNT}`);

  const terms: OfferTerms = {
    type,
    amount,
    equityPercentage: null,
    interestRatePercent: null,
    termMonths: null,
    royaltyPercent: null,
    conditions: [],
    expiresInSeconds: null,
  };
  // Another type's terms were refused above: what is present here belongs to `type`.
  if (present(raw.equityPercentage)) terms.equityPercentage = percent(fields.equityPercentage, raw.equityPercentage);
  if (present(raw.royaltyPercent)) terms.royaltyPercent = percent(fields.royaltyPercent, raw.royaltyPercent);
  if (present(raw.interestRatePercent))
    terms.interestRatePercent = percent(fields.interestRatePercent, raw.interestRatePercent, true);
  if (present(raw.termMonths)) {
    const months = raw.termMonths;
    if (!Number.isInteger(months) || months < 1 || months > MAX_TERM_MONTHS) {
      throw badInput(
        fields.termMonths,
        `${fields.termMonths} must be a whole number of months from 1 to ${MAX_TERM_MONTHS}`,
      );
    }
    terms.termMonths = months;
  }

  if (present(raw.conditions)) {
    if (raw.conditions.length > MAX_CONDITIONS)
      throw badInput(fields.conditions, `${fields.conditions} may have at most ${MAX_CONDITIONS} items`);
    terms.conditions = raw.conditions.map((condition, index) => {
      const value = typeof condition === 'string' ? condition.trim() : '';
      if (value.length === 0 || value.length > MAX_CONDITION_LENGTH) {
        throw badInput(
          `${fields.conditions}[${index}]`,
          `each condition must be 1..${MAX_CONDITION_LENGTH} characters (trimmed)`,
        );
      }
      return value;
    });
  }

  if (present(raw.expiresInSeconds)) {
    const seconds = raw.expiresInSeconds;
    if (!Number.isInteger(seconds) || seconds < opts.minExpirySeconds || seconds > MAX_EXPIRY_SECONDS) {
      throw badInput(
        fields.expiresInSeconds,
        `${fields.expiresInSeconds} must be a whole number from ${opts.minExpirySeconds} to ${MAX_EXPIRY_SECONDS}`,
      );
    }
    terms.expiresInSeconds = seconds;
  }
  return terms;
}

export interface CounterInput {
  counterAmount?: number | null | undefined;
  counterEquityPercentage?: number | null | undefined;
  counterInterestRatePercent?: number | null | undefined;
  counterTermMonths?: number | null | undefined;
  counterRoyaltyPercent?: number | null | undefined;
  counterConditions?: readonly string[] | null | undefined;
  counterExpiresInSeconds?: number | null | undefined;
}

export const COUNTER_INPUT_KEYS = [
  'counterAmount',
  'counterEquityPercentage',
  'counterInterestRatePercent',
  'counterTermMonths',
  'counterRoyaltyPercent',
  'counterConditions',
  'counterExpiresInSeconds',
] as const satisfies readonly (keyof CounterInput)[];

/** ACCEPT and REJECT take no counter terms. */
export function rejectCounterFields(response: 'ACCEPT' | 'REJECT' | 'COUNTER', input: CounterInput): void {
  if (response === 'COUNTER') return;
  for (const key of COUNTER_INPUT_KEYS) {
    if (present(input[key])) throw badInput(`input.${key}`, `input.${key} is only used with response COUNTER`);
  }
}

export interface CounteredOffer {
  type: OfferType;
  interestRatePercent: number | null;
  termMonths: number | null;
  royaltyPercent: number | null;
  conditions: readonly string[];
  createdAt: Date;
  expiresAt: Date | null;
}

/**
 * A counter-offer's terms: same type as the original; counterAmount always and
 * counterEquityPercentage (EQUITY) are required; LOAN/ROYALTY terms, conditions and the expiry
 * window default to the original's (the window clamped into the allowed range), so a LOAN/ROYALTY
 * term the original left to be agreed stays unset unless the counter names it.
 */
export function validateCounterTerms(
  original: CounteredOffer,
  input: CounterInput,
  opts: ValidationOptions,
): OfferTerms {
  const isLoan = original.type === OfferType.LOAN;
  const isRoyalty = original.type === OfferType.ROYALTY;
  let expiresInSeconds = input.counterExpiresInSeconds;
  if (!present(expiresInSeconds) && original.expiresAt !== null) {
    const window = Math.round((original.expiresAt.getTime() - original.createdAt.getTime()) / 1000);
    expiresInSeconds = Math.min(MAX_EXPIRY_SECONDS, Math.max(opts.minExpirySeconds, window));
  }
  return validateTerms(
    original.type,
    {
      amount: input.counterAmount,
      equityPercentage: input.counterEquityPercentage,
      interestRatePercent: input.counterInterestRatePercent ?? (isLoan ? original.interestRatePercent : null),
      termMonths: input.counterTermMonths ?? (isLoan ? original.termMonths : null),
      royaltyPercent: input.counterRoyaltyPercent ?? (isRoyalty ? original.royaltyPercent : null),
      conditions: input.counterConditions ?? original.conditions,
      expiresInSeconds,
    },
    COUNTER_FIELDS,
    opts,
  );
}
