import type { StandingsSubscription } from '../generated/graphql';

type Tally = StandingsSubscription['tallyUpdated'];

/** The live standings (tallyUpdated): rank, score, and whether it is rising. */
export function Standings({ standings, titles }: { standings: Tally | null; titles: Map<string, string> }) {
  const top = Math.max(1, ...(standings?.entries.map((e) => e.score) ?? []));
  return (
    <section className="panel" aria-label="Standings">
      <h2>
        Standings{' '}
        {standings && (
          <span className="muted">
            · {standings.totalVotes} {standings.totalVotes === 1 ? 'vote' : 'votes'}
          </span>
        )}
      </h2>
      <ol className="plain standings">
        {standings?.entries.map((entry) => (
          <li
            key={entry.submissionId}
            aria-label={`${titles.get(entry.submissionId)}: rank ${entry.rank}, score ${entry.score}`}
          >
            <span className="rank">{entry.rank}</span>
            <span>{titles.get(entry.submissionId) ?? entry.submissionId}</span>
            <strong>
              {entry.score}
              {entry.momentum > 0 && (
                <span className="up" aria-hidden="true">
                  {' '}
                  ▲
                </span>
              )}
              {entry.momentum < 0 && (
                <span className="down" aria-hidden="true">
                  {' '}
                  ▼
                </span>
              )}
            </strong>
            <span className="bar" style={{ width: `${(entry.score / top) * 100}%` }} aria-hidden="true" />
          </li>
        ))}
      </ol>
    </section>
  );
}
