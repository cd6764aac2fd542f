import { type AppError, conflict, forbidden } from '../../errors.js';

/** The offer is no longer PENDING (answered, withdrawn, countered or already expired and swept). */
export const offerNotPending = (offerId: string, status: string): AppError =>
  conflict(`Offer ${offerId} is ${status}; only a PENDING offer can change`, {
    offerId,
    status,
    reason: 'OFFER_NOT_PENDING',
  });

/** Past its expiresAt: reads as EXPIRED even before the sweeper has persisted it. */
export const offerExpired = (offerId: string): AppError =>
  conflict(`Offer ${offerId} has expired`, { offerId, status: 'EXPIRED', reason: 'OFFER_EXPIRED' });

export const alreadyAccepted = (submissionId: string, acceptedOfferId: string): AppError =>
  conflict(`Submission ${submissionId} already has an accepted offer (${acceptedOfferId})`, {
    submissionId,
    acceptedOfferId,
    reason: 'ALREADY_ACCEPTED',
  });

export const negotiationOpen = (submissionId: string, offerId: string): AppError =>
  conflict(
    `You already have an open offer on submission ${submissionId} (${offerId}); withdraw it or wait for an answer`,
    {
      submissionId,
      offerId,
      reason: 'NEGOTIATION_OPEN',
    },
  );

export const onlyJudges = (): AppError => forbidden('Only judges make offers');

export const ownSubmission = (submissionId: string): AppError =>
  forbidden(`You are the founder of submission ${submissionId}: you cannot make offers on it or back it`);

export const notResponder = (offerId: string, isCounter: boolean): AppError =>
  forbidden(
    isCounter
      ? `Only the judge this counter-offer answers may respond to offer ${offerId}`
      : `Only the founder of the offer's submission may respond to offer ${offerId}`,
  );

export const notAuthor = (offerId: string): AppError =>
  forbidden(`Only the author of offer ${offerId} may withdraw it`);
