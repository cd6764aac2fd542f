/**
 * The audience phone: join a competition, vote (whichever of the four methods it uses), tap
 * reactions onto the pitch, and follow the standings, the countdown, the stage's messages and
 * one's notifications. urql for queries and mutations, @ovation/client for every subscription.
 */
import { useState } from 'react';
import { useQuery } from 'urql';
import { CompetitionDocument, OpenCompetitionsDocument } from '../generated/graphql';
import { joinAsGuest, param, setParam, type Guest } from '../shared/config';
import { ConnectionStatus } from '../shared/Status';
import { useCompetition, useCurrentSession, useStandings } from '../shared/urql';
import { Feeds } from './Feeds';
import { NowPresenting } from './NowPresenting';
import { Pledge } from './Pledge';
import { ReactionPad } from './ReactionPad';
import { Standings } from './Standings';
import { Vote } from './Vote';

export function App({ initialGuest, onJoin }: { initialGuest: Guest | null; onJoin: (guest: Guest) => void }) {
  const [guest, setGuest] = useState(initialGuest);
  const [competitionId, setCompetitionId] = useState(guest ? param('competition') : null);

  if (!guest || !competitionId) {
    return (
      <Join
        guest={guest}
        onJoined={(joined, id) => {
          onJoin(joined);
          setGuest(joined);
          setParam('competition', id);
          setCompetitionId(id);
        }}
      />
    );
  }
  return <Competition competitionId={competitionId} guest={guest} />;
}

function Join({ guest, onJoined }: { guest: Guest | null; onJoined: (guest: Guest, competitionId: string) => void }) {
  const [name, setName] = useState(guest?.name ?? '');
  const [error, setError] = useState<string | null>(null);
  // A link to one competition (audience.html?competition=…) offers just that one; else the open ones.
  const preselected = param('competition');
  const [{ data: open, fetching: listing }] = useQuery({ query: OpenCompetitionsDocument, pause: !!preselected });
  const [{ data: one, fetching: reading }] = useQuery({
    query: CompetitionDocument,
    variables: { id: preselected ?? '' },
    pause: !preselected,
  });
  const fetching = listing || reading;
  const competitions = preselected ? (one?.competition ? [one.competition] : []) : (open?.competitions ?? []);

  async function join(competitionId: string) {
    if (!name.trim()) return setError('Enter your name first.');
    try {
      onJoined(guest?.name === name.trim() ? guest : await joinAsGuest(name.trim()), competitionId);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <main className="audience join">
      <h1>Join the pitch night</h1>
      <label>
        Your name
        <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="nickname" maxLength={60} />
      </label>
      <h2>{preselected ? 'Competition' : 'Open competitions'}</h2>
      {fetching && <p className="muted">Loading…</p>}
      {!fetching && competitions.length === 0 && (
        <p className="muted">Nothing is open yet. Ask the organiser to open voting.</p>
      )}
      <ul className="plain competitions">
        {competitions.map((c) => (
          <li key={c.id}>
            <button className="primary" onClick={() => void join(c.id)}>
              Join {c.title}
            </button>{' '}
            <span className="muted">{c.votingMethod.toLowerCase()} voting</span>
          </li>
        ))}
      </ul>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </main>
  );
}

function Competition({ competitionId, guest }: { competitionId: string; guest: Guest }) {
  const { competition, error } = useCompetition(competitionId);
  const session = useCurrentSession(competitionId);
  const standings = useStandings(competitionId);
  if (error)
    return (
      <p role="alert" className="error">
        {error.message}
      </p>
    );
  if (!competition) return <p className="muted">Loading…</p>;
  const titles = new Map(competition.submissions.map((s) => [s.id, s.title]));
  const closed = (standings?.status ?? competition.status) === 'CLOSED';

  return (
    <main className="audience">
      <header className="row">
        <div className="grow">
          <h1>{competition.title}</h1>
          <p className="muted">Signed in as {guest.name}</p>
        </div>
        <ConnectionStatus />
      </header>
      <NowPresenting session={session} />
      {session?.status === 'LIVE' && (
        <ReactionPad sessionId={session.id} pitch={session.currentSubmission?.title ?? ''} />
      )}
      <Vote competition={competition} closed={closed} />
      <Standings standings={standings} titles={titles} />
      {session && session.status !== 'ENDED' && <Pledge session={session} />}
      <Feeds competitionId={competitionId} />
    </main>
  );
}
