/**
 * The error catalogue of the public contract. Services throw these; one place
 * (src/schema/errors.ts) turns them into GraphQL errors with `extensions.code` and
 * `extensions.retryable`. Anything else is unexpected and masked as INTERNAL_SERVER_ERROR.
 * Services never import GraphQL: these are plain errors.
 */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  VOTING_CLOSED: 'VOTING_CLOSED',
  BUDGET_EXCEEDED: 'BUDGET_EXCEEDED',
  RATE_LIMITED: 'RATE_LIMITED',
  FRAUD_BLOCKED: 'FRAUD_BLOCKED',
  RESYNC_REQUIRED: 'RESYNC_REQUIRED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Whether retrying the same request can succeed (the contract's `extensions.retryable`). */
export const RETRYABLE: Record<ErrorCode, boolean> = {
  BAD_USER_INPUT: false,
  UNAUTHENTICATED: false,
  FORBIDDEN: false,
  NOT_FOUND: false,
  // A conflict is a state clash (already voted, concurrent accept): retrying the same call fails again.
  CONFLICT: false,
  VOTING_CLOSED: false,
  BUDGET_EXCEEDED: false,
  RATE_LIMITED: true,
  FRAUD_BLOCKED: false,
  // The same cursor fails again: refetch the state, then subscribe without afterSeq.
  RESYNC_REQUIRED: false,
  INTERNAL_SERVER_ERROR: true,
};

export class AppError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra, public `extensions` (e.g. `field`, `retryAfterMs`). Never put internals here. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.retryable = RETRYABLE[code];
  }
}

/** Invalid input; `field` is the input path the client should fix, e.g. `input.submissionId`. */
export const badInput = (field: string, message: string): AppError =>
  new AppError(ErrorCode.BAD_USER_INPUT, message, { field });

export const notFound = (what: string, id: string): AppError =>
  new AppError(ErrorCode.NOT_FOUND, `${what} ${id} was not found`, { id });

export const unauthenticated = (message = 'Sign in first: send Authorization: Bearer <JWT>'): AppError =>
  new AppError(ErrorCode.UNAUTHENTICATED, message);

export const forbidden = (message: string): AppError => new AppError(ErrorCode.FORBIDDEN, message);

export const conflict = (message: string, details: Record<string, unknown> = {}): AppError =>
  new AppError(ErrorCode.CONFLICT, message, details);

/**
 * A resume cursor that cannot be served: the events after it are no longer kept, or it is ahead
 * of the topic. `reason` says which; `latestSeq` is where a client that refetched continues.
 */
export const resyncRequired = (reason: 'NOT_KEPT' | 'AHEAD', afterSeq: number, latestSeq: number): AppError =>
  new AppError(
    ErrorCode.RESYNC_REQUIRED,
    reason === 'AHEAD'
      ? `afterSeq ${afterSeq} is ahead of the stream (latest seq ${latestSeq}): refetch, then subscribe without afterSeq`
      : `the events after seq ${afterSeq} are no longer kept: refetch, then subscribe without afterSeq`,
    { reason, afterSeq, latestSeq },
  );
