/**
 * One ballot UI per voting method (README "Voting"):
 *   SIMPLE     one vote per pitch                        castVote { submissionId }
 *   QUADRATIC  sets your votes on a pitch, v² credits    castVote { submissionId, votes }
 *   RANKED     your full order (drag, or move up/down)   castVote { ranking }
 *   APPROVAL   the set you approve                       castVote { approvals }
 * The ballot is kept in this browser (the API has no "my ballot" query), so a reload shows it.
 */
import { useEffect, useState, type Dispatch, type DragEvent, type SetStateAction } from 'react';
import { useMutation } from 'urql';
import { CastVoteDocument, type LiveCompetitionFragment } from '../generated/graphql';
import { errorText } from '../shared/kit';

type Competition = LiveCompetitionFragment;

function useBallot<T>(competitionId: string, initial: T): [T, Dispatch<SetStateAction<T>>] {
  const key = `ovation.ballot.${competitionId}`;
  const [value, setValue] = useState<T>(() => {
    const stored = localStorage.getItem(key);
    return stored ? (JSON.parse(stored) as T) : initial;
  });
  useEffect(() => localStorage.setItem(key, JSON.stringify(value)), [key, value]);
  return [value, setValue];
}

export function Vote({ competition, closed }: { competition: Competition; closed: boolean }) {
  const [{ error, fetching }, castVote] = useMutation(CastVoteDocument);
  const cast = (input: Omit<Parameters<typeof castVote>[0]['input'], 'competitionId'>) =>
    castVote({ input: { competitionId: competition.id, idempotencyKey: crypto.randomUUID(), ...input } });
  const props = { competition, cast, busy: fetching || closed };
  return (
    <section className="panel" aria-label="Vote">
      <h2>Vote <span className="muted">· {competition.votingMethod.toLowerCase()}</span></h2>
      {closed && <p className="muted">Voting is closed.</p>}
      {competition.votingMethod === 'SIMPLE' && <Simple {...props} />}
      {competition.votingMethod === 'QUADRATIC' && <Quadratic {...props} />}
      {competition.votingMethod === 'RANKED' && <Ranked {...props} />}
      {competition.votingMethod === 'APPROVAL' && <Approval {...props} />}
      {error && <p role="alert" className="error">{errorText(error)}</p>}
    </section>
  );
}

interface BallotProps {
  competition: Competition;
  cast: (input: { submissionId?: string; votes?: number; ranking?: string[]; approvals?: string[] }) => Promise<{
    data?: { castVote: { creditsRemaining?: number | null } } | null;
    error?: unknown;
  }>;
  busy: boolean;
}

function Simple({ competition, cast, busy }: BallotProps) {
  const [voted, setVoted] = useBallot<string[]>(competition.id, []);
  return (
    <ul className="plain ballot">
      {competition.submissions.map((s) => (
        <li key={s.id} className="row">
          <span className="grow">{s.title}</span>
          <button
            className="primary"
            disabled={busy || voted.includes(s.id)}
            onClick={async () => {
              const result = await cast({ submissionId: s.id });
              if (!result.error) setVoted((list) => [...list, s.id]);
            }}
          >
            {voted.includes(s.id) ? 'Voted' : 'Vote'}
            <span className="visually-hidden"> for {s.title}</span>
          </button>
        </li>
      ))}
    </ul>
  );
}

function Quadratic({ competition, cast, busy }: BallotProps) {
  const budget = competition.creditsPerVoter ?? 0;
  const [votes, setVotes] = useBallot<Record<string, number>>(competition.id, {});
  const spent = Object.values(votes).reduce((sum, v) => sum + v * v, 0);
  async function set(submissionId: string, value: number) {
    const result = await cast({ submissionId, votes: value });
    if (!result.error) setVotes((current) => ({ ...current, [submissionId]: value }));
  }
  return (
    <>
      <p className="credits" aria-live="polite">
        Credits left: <strong>{budget - spent}</strong> of {budget} <span className="muted">(v votes cost v² credits)</span>
      </p>
      <ul className="plain ballot">
        {competition.submissions.map((s) => {
          const v = votes[s.id] ?? 0;
          const nextCost = (v + 1) * (v + 1) - v * v;
          return (
            <li key={s.id} className="row">
              <span className="grow">{s.title}</span>
              <button aria-label={`Fewer votes for ${s.title}`} disabled={busy || v === 0} onClick={() => void set(s.id, v - 1)}>
                −
              </button>
              <output aria-label={`Votes for ${s.title}`}>{v}</output>
              <button aria-label={`More votes for ${s.title}`} disabled={busy || budget - spent < nextCost} onClick={() => void set(s.id, v + 1)}>
                +
              </button>
            </li>
          );
        })}
      </ul>
    </>
  );
}

function Ranked({ competition, cast, busy }: BallotProps) {
  const ids = competition.submissions.map((s) => s.id);
  const [saved, setSaved] = useBallot<string[] | null>(competition.id, null);
  const [order, setOrder] = useState<string[]>(saved ?? ids);
  const [dragged, setDragged] = useState<string | null>(null);
  const title = (id: string) => competition.submissions.find((s) => s.id === id)?.title ?? id;
  const move = (from: number, to: number) => {
    if (to < 0 || to >= order.length) return;
    const next = [...order];
    const [item] = next.splice(from, 1);
    next.splice(to, 0, item!);
    setOrder(next);
  };
  const drop = (event: DragEvent, index: number) => {
    event.preventDefault();
    if (dragged !== null) move(order.indexOf(dragged), index);
    setDragged(null);
  };
  return (
    <>
      <p className="muted">Drag to rank, best first (or use the arrows).</p>
      <ol className="plain ballot ranking" aria-label="Your ranking">
        {order.map((id, index) => (
          <li
            key={id}
            className={`row rank-item${dragged === id ? ' dragging' : ''}`}
            draggable
            onDragStart={(e) => {
              e.dataTransfer.setData('text/plain', id);
              setDragged(id);
            }}
            onDragOver={(e) => e.preventDefault()}
            onDrop={(e) => drop(e, index)}
            aria-label={`${index + 1}. ${title(id)}`}
          >
            <span className="handle" aria-hidden="true">⠿</span>
            <span className="grow">
              {index + 1}. {title(id)}
            </span>
            <button aria-label={`Move ${title(id)} up`} disabled={index === 0} onClick={() => move(index, index - 1)}>
              ↑
            </button>
            <button aria-label={`Move ${title(id)} down`} disabled={index === order.length - 1} onClick={() => move(index, index + 1)}>
              ↓
            </button>
          </li>
        ))}
      </ol>
      <button
        className="primary"
        disabled={busy}
        onClick={async () => {
          const result = await cast({ ranking: order });
          if (!result.error) setSaved(order);
        }}
      >
        {saved ? 'Update ranking' : 'Submit ranking'}
      </button>
      {saved && <p className="muted">Ranking saved.</p>}
    </>
  );
}

function Approval({ competition, cast, busy }: BallotProps) {
  const [saved, setSaved] = useBallot<string[] | null>(competition.id, null);
  const [approved, setApproved] = useState<string[]>(saved ?? []);
  return (
    <>
      <ul className="plain ballot">
        {competition.submissions.map((s) => (
          <li key={s.id}>
            <label className="check">
              <input
                type="checkbox"
                checked={approved.includes(s.id)}
                onChange={(e) => setApproved(e.target.checked ? [...approved, s.id] : approved.filter((id) => id !== s.id))}
              />{' '}
              Approve {s.title}
            </label>
          </li>
        ))}
      </ul>
      <button
        className="primary"
        disabled={busy}
        onClick={async () => {
          const result = await cast({ approvals: approved });
          if (!result.error) setSaved(approved);
        }}
      >
        {saved ? 'Update approvals' : 'Submit approvals'}
      </button>
      {saved && <p className="muted">Approvals saved.</p>}
    </>
  );
}
