/**
 * The organiser console: create and open competitions, run the session (start, next, extend,
 * pause, end), and watch votes per second, fraud alerts and offers live. Apollo Client, with the
 * subscriptions on @ovation/client through OvationLink. Needs an ADMIN token.
 */
import { useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useState } from 'react';
import {
  AnnounceDocument,
  CloseCompetitionDocument,
  CompetitionDocument,
  ConsoleCompetitionsDocument,
  ControlSessionDocument,
  CreateCompetitionDocument,
  CreateSessionDocument,
  CreateSubmissionDocument,
  DashboardDocument,
  FraudAlertsDocument,
  OffersDocument,
  OpenCompetitionDocument,
  PublishStageMessageDocument,
  SessionUpdatedDocument,
  SessionsDocument,
  SubmissionOffersDocument,
  type FraudAlertsSubscription,
  type LiveSessionFragment,
  type LiveOfferFragment,
  type SessionAction,
  type VotingMethod,
} from '../generated/graphql';
import { param, saveOrganiserToken, setParam } from '../shared/config';
import { currentSession } from '../shared/sessions';
import { ConnectionStatus } from '../shared/Status';
import { formatSeconds, useCountdown } from '../shared/time';

function message(error: unknown): string | null {
  if (!error) return null;
  const e = error as { errors?: readonly { message: string; extensions?: { code?: string } }[]; message: string };
  return e.errors?.[0]
    ? `${e.errors[0].message}${e.errors[0].extensions?.code ? ` (${e.errors[0].extensions.code})` : ''}`
    : e.message;
}

function Alert({ error }: { error: unknown }) {
  const text = message(error);
  return text ? (
    <p role="alert" className="error">
      {text}
    </p>
  ) : null;
}

export function TokenForm({ onToken }: { onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <main className="console narrow">
      <h1>Organiser console</h1>
      <p>
        This console needs an ADMIN token. <code>npm run example</code> prints a console link that carries one; or make
        one with <code>npm run token -- --sub organiser --role ADMIN</code>.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          saveOrganiserToken(value.trim());
          onToken(value.trim());
        }}
      >
        <label>
          ADMIN token
          <input value={value} onChange={(e) => setValue(e.target.value)} />
        </label>
        <button className="primary" type="submit" disabled={!value.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}

const COMPETITIONS_POLL_MS = 5000;

export function Console() {
  const [selected, setSelected] = useState<string | null>(param('competition'));
  // No subscription announces new competitions (feeds are per competition): the list is polled,
  // so ones another organiser (or a script on the API) creates show up within seconds.
  const { data, error } = useQuery(ConsoleCompetitionsDocument, { pollInterval: COMPETITIONS_POLL_MS });
  const select = (id: string) => {
    setParam('competition', id);
    setSelected(id);
  };
  return (
    <main className="console">
      <header className="row">
        <h1 className="grow">Organiser console</h1>
        <ConnectionStatus />
      </header>
      <div className="console-grid">
        <aside className="stack">
          <CreateCompetition onCreated={select} />
          <section className="panel" aria-label="Competitions">
            <h2>Competitions</h2>
            <Alert error={error} />
            <ul className="plain competitions">
              {data?.competitions.map((c) => (
                <li key={c.id}>
                  <button
                    aria-current={c.id === selected}
                    className={c.id === selected ? 'selected' : ''}
                    onClick={() => select(c.id)}
                  >
                    {c.title}
                  </button>
                  <span className="muted">
                    {' '}
                    {c.status.toLowerCase()} · {c.votingMethod.toLowerCase()}
                  </span>
                </li>
              ))}
            </ul>
          </section>
        </aside>
        {selected ? (
          <CompetitionPanel key={selected} competitionId={selected} />
        ) : (
          <p className="muted">Create or pick a competition.</p>
        )}
      </div>
    </main>
  );
}

function CreateCompetition({ onCreated }: { onCreated: (id: string) => void }) {
  const [title, setTitle] = useState('');
  const [method, setMethod] = useState<VotingMethod>('SIMPLE');
  const [credits, setCredits] = useState('100');
  const [pitches, setPitches] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [createCompetition] = useMutation(CreateCompetitionDocument, { refetchQueries: [ConsoleCompetitionsDocument] });
  const [createSubmission] = useMutation(CreateSubmissionDocument);

  async function submit() {
    setBusy(true);
    setError(null);
    try {
      const { data } = await createCompetition({
        variables: {
          input: { title, votingMethod: method, creditsPerVoter: method === 'QUADRATIC' ? Number(credits) : null },
        },
      });
      const id = data!.createCompetition.id;
      // One submission per line, in this order (the session's running order follows it).
      for (const line of pitches
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)) {
        await createSubmission({ variables: { input: { competitionId: id, title: line } } });
      }
      setTitle('');
      setPitches('');
      onCreated(id);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-label="New competition">
      <h2>New competition</h2>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          Title
          <input value={title} onChange={(e) => setTitle(e.target.value)} required maxLength={200} />
        </label>
        <label>
          Voting method
          <select value={method} onChange={(e) => setMethod(e.target.value as VotingMethod)}>
            <option value="SIMPLE">Simple: one vote per pitch</option>
            <option value="QUADRATIC">Quadratic: credits, v votes cost v²</option>
            <option value="RANKED">Ranked: order every pitch</option>
            <option value="APPROVAL">Approval: approve any set</option>
          </select>
        </label>
        {method === 'QUADRATIC' && (
          <label>
            Credits per voter
            <input type="number" min={1} value={credits} onChange={(e) => setCredits(e.target.value)} />
          </label>
        )}
        <label>
          Pitches, one per line
          <textarea rows={4} value={pitches} onChange={(e) => setPitches(e.target.value)} />
        </label>
        <button className="primary" type="submit" disabled={busy || !title.trim()}>
          Create competition
        </button>
        <Alert error={error} />
      </form>
    </section>
  );
}

function CompetitionPanel({ competitionId }: { competitionId: string }) {
  const { data, error } = useQuery(CompetitionDocument, { variables: { id: competitionId } });
  const refetch = { refetchQueries: [ConsoleCompetitionsDocument, CompetitionDocument] };
  const [open, opening] = useMutation(OpenCompetitionDocument, refetch);
  const [close, closing] = useMutation(CloseCompetitionDocument, refetch);
  const competition = data?.competition;
  if (!competition) return <Alert error={error} />;
  const links = `?competition=${competition.id}`;
  return (
    <div className="stack">
      <section className="panel" aria-label="Competition">
        <div className="row">
          <h2 className="grow">
            {competition.title} <span className="muted">· {competition.votingMethod.toLowerCase()}</span>
          </h2>
          <span className={`badge badge-${competition.status}`}>{competition.status}</span>
        </div>
        <p className="muted">{competition.submissions.map((s) => s.title).join(' · ') || 'No pitches yet.'}</p>
        <div className="row">
          {competition.status === 'DRAFT' && (
            <button
              className="primary"
              onClick={() => void open({ variables: { id: competition.id } })}
              disabled={opening.loading}
            >
              Open voting
            </button>
          )}
          {competition.status === 'OPEN' && (
            <button
              className="danger"
              onClick={() => void close({ variables: { id: competition.id } })}
              disabled={closing.loading}
            >
              Close voting
            </button>
          )}
          <a href={`audience.html${links}`} target="_blank" rel="noreferrer">
            Audience page
          </a>
          <a href={`screen.html${links}`} target="_blank" rel="noreferrer">
            Big screen
          </a>
        </div>
        <Alert error={opening.error ?? closing.error} />
      </section>
      <SessionPanel competitionId={competition.id} submissionIds={competition.submissions.map((s) => s.id)} />
      <Stage competitionId={competition.id} />
      <FraudAlerts competitionId={competition.id} />
    </div>
  );
}

function SessionPanel({ competitionId, submissionIds }: { competitionId: string; submissionIds: string[] }) {
  const { data, refetch } = useQuery(SessionsDocument, { variables: { competitionId } });
  const [seconds, setSeconds] = useState('120');
  const [create, creating] = useMutation(CreateSessionDocument);
  const candidate = currentSession(data?.sessions ?? []);
  const ended = !candidate || candidate.status === 'ENDED';
  return (
    <>
      {ended && (
        <section className="panel" aria-label="New session">
          <h2>Session</h2>
          <form
            className="row"
            onSubmit={async (e) => {
              e.preventDefault();
              await create({
                variables: { input: { competitionId, submissionIds, presentationSeconds: Number(seconds) } },
              });
              await refetch();
            }}
          >
            <label className="grow">
              Seconds per pitch
              <input type="number" min={10} value={seconds} onChange={(e) => setSeconds(e.target.value)} />
            </label>
            <button className="primary" type="submit" disabled={creating.loading || submissionIds.length === 0}>
              Create session
            </button>
          </form>
          <Alert error={creating.error} />
        </section>
      )}
      {candidate && <RunSession key={candidate.id} initial={candidate} competitionId={competitionId} />}
    </>
  );
}

const CONTROLS: { action: SessionAction; label: string; when: string[]; className?: string }[] = [
  { action: 'START', label: 'Start', when: ['SCHEDULED'], className: 'primary' },
  { action: 'PREVIOUS', label: 'Previous pitch', when: ['LIVE', 'PAUSED'] },
  { action: 'NEXT', label: 'Next pitch', when: ['LIVE', 'PAUSED'], className: 'primary' },
  { action: 'EXTEND_TIMER', label: 'Extend 30 s', when: ['LIVE', 'PAUSED'] },
  { action: 'PAUSE', label: 'Pause', when: ['LIVE'] },
  { action: 'RESUME', label: 'Resume', when: ['PAUSED'] },
  { action: 'END', label: 'End session', when: ['LIVE', 'PAUSED'], className: 'danger' },
];

function RunSession({ initial, competitionId }: { initial: LiveSessionFragment; competitionId: string }) {
  const { data } = useSubscription(SessionUpdatedDocument, { variables: { sessionId: initial.id } });
  const session = data?.sessionUpdated ?? initial;
  const remaining = useCountdown(session);
  const [control, controlling] = useMutation(ControlSessionDocument);
  const last = session.currentIndex >= session.runningOrder.length - 1;
  return (
    <>
      <section className="panel" aria-label="Session">
        <div className="row">
          <h2 className="grow">Session</h2>
          <span className={`badge badge-${session.status}`}>{session.status}</span>
        </div>
        <p className="now">
          {session.currentSubmission?.title ??
            (session.status === 'SCHEDULED' ? `First: ${session.runningOrder[0]?.title ?? '—'}` : '—')}
          {(session.status === 'LIVE' || session.status === 'PAUSED') && (
            <span className="countdown" role="timer" aria-label="Time left">
              {' '}
              {formatSeconds(remaining)}
            </span>
          )}
        </p>
        <p className="muted">
          Pitch {Math.min(session.currentIndex + 1, session.runningOrder.length)} of {session.runningOrder.length} ·{' '}
          {session.presentationSeconds} s each
        </p>
        <div className="row" role="group" aria-label="Session controls">
          {CONTROLS.filter(
            (c) =>
              c.when.includes(session.status) &&
              !(c.action === 'NEXT' && last) &&
              !(c.action === 'PREVIOUS' && session.currentIndex === 0),
          ).map((c) => (
            <button
              key={c.action}
              className={c.className}
              disabled={controlling.loading}
              onClick={() =>
                void control({
                  // expectedSeq: the press applies to the state shown here, never to a newer one.
                  variables: {
                    input: {
                      sessionId: session.id,
                      action: c.action,
                      expectedSeq: session.seq,
                      seconds: c.action === 'EXTEND_TIMER' ? 30 : null,
                    },
                  },
                }).catch(() => {})
              }
            >
              {c.label}
            </button>
          ))}
        </div>
        <Alert error={controlling.error} />
      </section>
      <Metrics competitionId={competitionId} sessionId={session.id} />
      <Offers session={session} />
    </>
  );
}

function Metrics({ competitionId, sessionId }: { competitionId: string; sessionId: string }) {
  const { data, error } = useSubscription(DashboardDocument, { variables: { competitionId, sessionId } });
  const d = data?.dashboardUpdated;
  const stats: [string, string][] = [
    ['Votes per second', (d?.votesPerSecond ?? 0).toFixed(1)],
    ['Votes', String(d?.totalVotes ?? 0)],
    ['Votes last minute', String(d?.votesLastMinute ?? 0)],
    ['Viewers', String(d?.activeViewers ?? 0)],
    ['Reactions per second', (d?.reactionsPerSecond ?? 0).toFixed(1)],
  ];
  return (
    <section className="panel" aria-label="Live metrics">
      <h2>Live</h2>
      <dl className="metrics">
        {stats.map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd aria-label={label}>{value}</dd>
          </div>
        ))}
      </dl>
      <Alert error={error} />
    </section>
  );
}

/**
 * Offers on the session's pitches: the ones made so far (offers(submissionId) per pitch), then
 * every transition from offerUpdated, delivered once and in seq order (resumed after a drop); the
 * latest state of each offer wins.
 */
function Offers({ session }: { session: LiveSessionFragment }) {
  const [live, setLive] = useState<Map<string, LiveOfferFragment>>(new Map());
  useSubscription(OffersDocument, {
    variables: { sessionId: session.id },
    onData: ({ data }) => {
      const offer = data.data?.offerUpdated;
      if (offer) setLive((map) => new Map(map).set(offer.id, offer));
    },
  });
  return (
    <section className="panel" aria-label="Offers">
      <h2>Offers</h2>
      <ul className="plain feed">
        {session.runningOrder.map((pitch) => (
          <PitchOffers key={pitch.id} pitch={pitch} live={live} />
        ))}
      </ul>
    </section>
  );
}

function PitchOffers({ pitch, live }: { pitch: { id: string; title: string }; live: Map<string, LiveOfferFragment> }) {
  const { data } = useQuery(SubmissionOffersDocument, { variables: { submissionId: pitch.id } });
  const known = new Map((data?.offers ?? []).map((o) => [o.id, o]));
  for (const offer of live.values()) if (offer.submissionId === pitch.id) known.set(offer.id, offer);
  return [...known.values()].map((o) => (
    <li key={o.id}>
      <strong>{pitch.title}</strong> · {o.judge.name} · {o.type.toLowerCase()} {o.amount.toLocaleString('en')}
      {o.equityPercentage != null ? ` for ${o.equityPercentage} %` : ''} ·{' '}
      <span className={`badge badge-${o.status}`}>{o.status}</span>
    </li>
  ));
}

type FraudAlert = FraudAlertsSubscription['fraudAlertRaised'];

function FraudAlerts({ competitionId }: { competitionId: string }) {
  const [alerts, setAlerts] = useState<FraudAlert[]>([]);
  useSubscription(FraudAlertsDocument, {
    variables: { competitionId },
    onData: ({ data }) => {
      const alert = data.data?.fraudAlertRaised;
      if (alert) setAlerts((list) => [alert, ...list].slice(0, 50));
    },
  });
  return (
    <section className="panel" aria-label="Fraud alerts">
      <h2>Fraud alerts</h2>
      {alerts.length === 0 && <p className="muted">None.</p>}
      <ul className="plain feed">
        {alerts.map((a) => (
          <li key={a.id}>
            <span className={`badge badge-${a.action}`}>{a.action}</span> {a.rule} · score {Math.round(a.score)} · user{' '}
            {a.userId ?? '—'}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Stage({ competitionId }: { competitionId: string }) {
  const [text, setText] = useState('');
  const [title, setTitle] = useState('');
  const [publish, publishing] = useMutation(PublishStageMessageDocument);
  const [announce, announcing] = useMutation(AnnounceDocument);
  return (
    <section className="panel" aria-label="Talk to the room">
      <h2>Talk to the room</h2>
      <form
        className="row"
        onSubmit={async (e) => {
          e.preventDefault();
          await publish({ variables: { channel: `stage:${competitionId}`, data: { text } } });
          setText('');
        }}
      >
        <label className="grow">
          Message to the audience pages
          <input value={text} onChange={(e) => setText(e.target.value)} maxLength={500} />
        </label>
        <button type="submit" disabled={!text.trim() || publishing.loading}>
          Send message
        </button>
      </form>
      <form
        className="row"
        onSubmit={async (e) => {
          e.preventDefault();
          await announce({ variables: { input: { title } } });
          setTitle('');
        }}
      >
        <label className="grow">
          Announcement (a notification to everyone)
          <input value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} />
        </label>
        <button type="submit" disabled={!title.trim() || announcing.loading}>
          Announce
        </button>
      </form>
      {announcing.data && <p className="muted">Announced to {announcing.data.announce} people.</p>}
      <Alert error={publishing.error ?? announcing.error} />
    </section>
  );
}
