import type { LiveSessionFragment } from '../generated/graphql';
import { formatSeconds, useCountdown } from '../shared/time';

/** The pitch on stage and its countdown (the server's clock, see useCountdown). */
export function NowPresenting({ session }: { session: LiveSessionFragment | null }) {
  const remaining = useCountdown(session);
  if (!session)
    return (
      <section className="panel" aria-label="Now presenting">
        <p className="muted">The session has not been scheduled yet.</p>
      </section>
    );
  const position = `${session.currentIndex + 1} of ${session.runningOrder.length}`;
  return (
    <section className="panel now" aria-label="Now presenting">
      <h2>
        {session.status === 'LIVE'
          ? 'Now presenting'
          : session.status === 'PAUSED'
            ? 'Paused'
            : session.status === 'ENDED'
              ? 'Session ended'
              : 'Up first'}
      </h2>
      <p className="pitch">{session.currentSubmission?.title ?? session.runningOrder[0]?.title ?? '—'}</p>
      {(session.status === 'LIVE' || session.status === 'PAUSED') && (
        <p className="countdown" role="timer" aria-label="Time left">
          {formatSeconds(remaining)} <span className="muted">· pitch {position}</span>
        </p>
      )}
    </section>
  );
}
