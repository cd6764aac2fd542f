import { useEffect, useState } from 'react';

/**
 * The countdown is the server's: `timerEndsAt` on the server's clock. The client offsets its own
 * clock by the difference seen when the session arrived (`serverTime`), so every screen shows the
 * same number whatever its clock says.
 */
export interface Timed {
  status: string;
  remainingSeconds?: number | null;
  serverTime: string;
  timerEndsAt?: string | null;
}

export function useCountdown(session: Timed | null | undefined): number | null {
  const [offsetMs, setOffsetMs] = useState(0);
  const [, setTick] = useState(0);
  useEffect(() => {
    if (session) setOffsetMs(Date.parse(session.serverTime) - Date.now());
  }, [session]);
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), 250);
    return () => clearInterval(timer);
  }, []);
  if (session?.remainingSeconds == null) return null;
  if (session.status !== 'LIVE' || !session.timerEndsAt) return Math.ceil(session.remainingSeconds);
  return Math.max(0, Math.ceil((Date.parse(session.timerEndsAt) - (Date.now() + offsetMs)) / 1000));
}

export function formatSeconds(seconds: number | null): string {
  if (seconds === null) return '–:––';
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}
