import type { LiveSessionFragment } from '../generated/graphql';

const ACTIVE = ['LIVE', 'PAUSED'];

/** The session a screen shows: a running one, else the next scheduled one, else the last. */
export function currentSession(sessions: readonly LiveSessionFragment[]): LiveSessionFragment | null {
  return (
    sessions.find((s) => ACTIVE.includes(s.status)) ??
    sessions.find((s) => s.status === 'SCHEDULED') ??
    sessions[sessions.length - 1] ??
    null
  );
}
