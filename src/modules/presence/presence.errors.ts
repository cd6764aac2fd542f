/** The presence module's expected failures (thin wrappers over the catalogue in src/errors.ts). */
import { AppError, badInput, conflict } from '../../errors.js';

export const offlineNotSettable = (): AppError =>
  badInput(
    'status',
    'OFFLINE cannot be set: a user is OFFLINE when none of their connections is live (use AWAY or DND)',
  );

export const statusMessageTooLong = (max: number): AppError =>
  badInput('statusMessage', `statusMessage must be at most ${max} characters`);

export const userIdCount = (max: number): AppError => badInput('userIds', `userIds must hold 1 to ${max} ids`);

/** setPresence holds only while connected: with no live connection there is nothing to hold it. */
export const notConnected = (): AppError =>
  conflict(
    'setPresence needs a live connection of yours (graphql-ws, or an SSE stream): presence holds only while connected',
    {
      reason: 'NOT_CONNECTED',
    },
  );

export const cannotFollowSelf = (): AppError => badInput('userId', 'You cannot follow yourself');
