/**
 * The big screen, for a projector: the current pitch and its countdown, the live leaderboard with
 * momentum, the reaction heat map and the investment pool. Large type, high contrast, no controls
 * beyond choosing the competition. urql + @ovation/client; nothing here needs a token.
 */
import { useEffect, useState } from 'react';
import { useQuery, useSubscription } from 'urql';
import {
  OpenCompetitionsDocument,
  PoolDocument,
  ReactionBurstsDocument,
  type LiveSessionFragment,
} from '../generated/graphql';
import { param, setParam } from '../shared/config';
import { ConnectionStatus } from '../shared/Status';
import { formatSeconds, useCountdown } from '../shared/time';
import { useCompetition, useCurrentSession, useStandings } from '../shared/urql';

export function Screen() {
  const [competitionId, setCompetitionId] = useState(param('competition'));
  const [{ data }] = useQuery({ query: OpenCompetitionsDocument, pause: !!competitionId });
  // Without ?competition=, show the newest open one.
  useEffect(() => {
    const first = data?.competitions[0];
    if (!competitionId && first) {
      setParam('competition', first.id);
      setCompetitionId(first.id);
    }
  }, [competitionId, data]);
  if (!competitionId)
    return (
      <main className="screen">
        <h1>Waiting for a competition to open…</h1>
        <ConnectionStatus />
      </main>
    );
  return <Live competitionId={competitionId} />;
}

function Live({ competitionId }: { competitionId: string }) {
  const { competition } = useCompetition(competitionId);
  const session = useCurrentSession(competitionId);
  const standings = useStandings(competitionId);
  const titles = new Map(competition?.submissions.map((s) => [s.id, s.title]));
  const top = Math.max(1, ...(standings?.entries.map((e) => e.score) ?? []));

  return (
    <main className="screen">
      <header className="screen-header">
        <h1>{competition?.title ?? '…'}</h1>
        <ConnectionStatus />
      </header>
      <Stage session={session} />
      <section className="panel leaderboard" aria-label="Leaderboard">
        <h2>
          Leaderboard{' '}
          <span className="muted">
            · {standings?.totalVotes ?? 0} {standings?.totalVotes === 1 ? 'vote' : 'votes'}
            {standings?.status === 'CLOSED' ? ' · final' : ''}
          </span>
        </h2>
        <ol className="plain">
          {standings?.entries.map((entry) => {
            const title = titles.get(entry.submissionId) ?? entry.submissionId;
            return (
              <li
                key={entry.submissionId}
                aria-label={`${title}: rank ${entry.rank}, score ${entry.score}`}
                data-score={entry.score}
              >
                <span className="rank">{entry.rank}</span>
                <span className="title">{title}</span>
                <span className="score">{entry.score}</span>
                <span
                  className={`momentum ${entry.momentum > 0 ? 'up' : entry.momentum < 0 ? 'down' : ''}`}
                  title="Momentum: votes this minute against the minute before"
                >
                  {entry.momentum > 0 ? `▲ ${entry.momentum}` : entry.momentum < 0 ? `▼ ${-entry.momentum}` : '·'}
                </span>
                <span className="bar" style={{ width: `${(entry.score / top) * 100}%` }} aria-hidden="true" />
              </li>
            );
          })}
        </ol>
      </section>
      {session && <HeatMap key={session.id} sessionId={session.id} />}
      {session && <Pool key={`pool-${session.id}`} sessionId={session.id} titles={titles} />}
    </main>
  );
}

function Stage({ session }: { session: LiveSessionFragment | null }) {
  const remaining = useCountdown(session);
  const running = session?.status === 'LIVE' || session?.status === 'PAUSED';
  return (
    <section className="panel stage-panel" aria-label="Current pitch">
      <h2>
        {!session
          ? 'Up next'
          : session.status === 'PAUSED'
            ? 'Paused'
            : session.status === 'ENDED'
              ? 'That was the last pitch'
              : running
                ? 'Now presenting'
                : 'Up first'}
      </h2>
      <p className="pitch">{session?.currentSubmission?.title ?? session?.runningOrder[0]?.title ?? '—'}</p>
      <p
        className={`countdown${running && remaining !== null && remaining <= 10 ? ' ending' : ''}`}
        role="timer"
        aria-label="Time left"
      >
        {running ? formatSeconds(remaining) : '–:––'}
      </p>
      {session && (
        <p className="muted">
          Pitch {Math.min(session.currentIndex + 1, session.runningOrder.length)} of {session.runningOrder.length}
        </p>
      )}
    </section>
  );
}

const SIZE = 8;
const empty = () => Array.from({ length: SIZE }, () => Array<number>(SIZE).fill(0));

/**
 * Reactions land where the audience tapped: each burst's 8 × 8 counts are added to the session's
 * totals (the cell's label) and to a glow that fades within seconds (what the room sees).
 */
function HeatMap({ sessionId }: { sessionId: string }) {
  // The reducer sees every burst (urql may render several at once): the exact totals.
  const [{ data }] = useSubscription(
    { query: ReactionBurstsDocument, variables: { sessionId } },
    (acc: { total: number; cells: number[][]; last: number[][]; seq: number } | undefined, { reactions: burst }) => {
      const cells = acc?.cells ?? empty();
      return {
        total: (acc?.total ?? 0) + burst.total,
        cells: cells.map((row, r) => row.map((v, c) => v + (burst.heatmap[r]?.[c] ?? 0))),
        last: burst.heatmap,
        seq: burst.seq,
      };
    },
  );
  const [glow, setGlow] = useState(empty);
  useEffect(() => {
    if (data) setGlow((g) => g.map((row, r) => row.map((v, c) => v + (data.last[r]?.[c] ?? 0))));
  }, [data]);
  useEffect(() => {
    const timer = setInterval(() => setGlow((g) => g.map((row) => row.map((v) => (v < 0.05 ? 0 : v * 0.8)))), 250);
    return () => clearInterval(timer);
  }, []);
  const cells = data?.cells ?? empty();
  return (
    <section className="panel heat" aria-label="Reaction heat map">
      <h2>
        Reactions{' '}
        <span className="muted">
          · <span data-testid="reaction-total">{data?.total ?? 0}</span>
        </span>
      </h2>
      <div className="grid" role="grid" aria-label="Where the audience reacted">
        {cells.map((row, r) => (
          <div role="row" key={r} className="grid-row">
            {row.map((count, c) => (
              <div
                role="gridcell"
                key={c}
                aria-label={`Row ${r + 1}, column ${c + 1}: ${count}`}
                data-count={count}
                style={{ opacity: 0.12 + Math.min(1, glow[r]![c]! / 4) * 0.88 }}
              />
            ))}
          </div>
        ))}
      </div>
    </section>
  );
}

function Pool({ sessionId, titles }: { sessionId: string; titles: Map<string, string> }) {
  const [{ data }] = useSubscription({ query: PoolDocument, variables: { sessionId } });
  const pool = data?.investmentPoolUpdated;
  const money = (n: number) => n.toLocaleString('en', { maximumFractionDigits: 0 });
  return (
    <section className="panel pool" aria-label="Investment pool">
      <h2>
        Investment pool <span className="muted">· {pool?.backers ?? 0} backers</span>
      </h2>
      <p className="pool-total">{money(pool?.totalAmount ?? 0)}</p>
      <ul className="plain">
        {pool?.entries
          .filter((e) => e.amount > 0)
          .map((e) => (
            <li key={e.submissionId} className="row">
              <span className="grow">{titles.get(e.submissionId) ?? e.submissionId}</span>
              <strong>{money(e.amount)}</strong>
            </li>
          ))}
      </ul>
    </section>
  );
}
