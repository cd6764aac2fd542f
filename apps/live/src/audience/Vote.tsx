/**
 * One ballot UI per voting method (README "Voting"):
 *   SIMPLE     one vote per pitch                        castVote { submissionId }
 *   QUADRATIC  sets your votes on a pitch, v² credits    castVote { submissionId, votes }
 *   RANKED     your full order (drag, or move up/down)   castVote { ranking }
 *   APPROVAL   the set you approve                       castVote { approvals }
 * The ballot is kept in this browser (the API has no "my ballot" query), so a reload shows it.
 */
import { useEffect, useRef, useState, type Dispatch, type PointerEvent, type SetStateAction } from 'react';
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
  const props = { competition, cast, busy: fetching || closed, closed };
  return (
    <section className="panel" aria-label="Vote">
      <h2>
        Vote <span className="muted">· {competition.votingMethod.toLowerCase()}</span>
      </h2>
      {closed && <p className="muted">Voting is closed.</p>}
      {competition.votingMethod === 'SIMPLE' && <Simple {...props} />}
      {competition.votingMethod === 'QUADRATIC' && <Quadratic {...props} />}
      {competition.votingMethod === 'RANKED' && <Ranked {...props} />}
      {competition.votingMethod === 'APPROVAL' && <Approval {...props} />}
      {error && (
        <p role="alert" className="error">
          {errorText(error)}
        </p>
      )}
    </section>
  );
}

interface BallotProps {
  competition: Competition;
  cast: (input: { submissionId?: string; votes?: number; ranking?: string[]; approvals?: string[] }) => Promise<{
    data?: { castVote: { creditsRemaining?: number | null } } | null;
    error?: unknown;
  }>;
  /** A vote in flight, or voting closed. */
  busy: boolean;
  closed: boolean;
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

/**
 * Allocations are batched: a tap changes the ballot here at once, and the changes go to the API
 * once the taps stop (QUADRATIC_SETTLE_MS), one castVote per pitch changed, decreases first (they
 * free credits the increases may need). Sending each tap would run into the vote rate limit
 * (RATE_LIMIT_VOTES_PER_MINUTE, 10 by default) as soon as someone taps + a few times in a row.
 */
const QUADRATIC_SETTLE_MS = 700;

function Quadratic({ competition, cast, closed }: BallotProps) {
  const budget = competition.creditsPerVoter ?? 0;
  // saved: what the API has; draft: what the voter sees and edits.
  const [saved, setSaved] = useBallot<Record<string, number>>(competition.id, {});
  const [draft, setDraft] = useState(saved);
  const [pending, setPending] = useState(false);
  const latest = useRef({ saved, draft });
  latest.current = { saved, draft };
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  // One batch at a time: a batch started while another is in flight waits for it.
  const queue = useRef<Promise<void>>(Promise.resolve());
  useEffect(() => () => clearTimeout(timer.current), []);

  const spent = Object.values(draft).reduce((sum, v) => sum + v * v, 0);

  function flush() {
    queue.current = queue.current.then(async () => {
      const { saved: before, draft: wanted } = latest.current;
      const changes = Object.entries(wanted)
        .filter(([id, v]) => (before[id] ?? 0) !== v)
        .sort(([a, va], [b, vb]) => va - (before[a] ?? 0) - (vb - (before[b] ?? 0)));
      for (const [submissionId, votes] of changes) {
        const result = await cast({ submissionId, votes });
        // Refused (budget, rate limit, closed): back to what the API has; the error shows.
        if (result.error) setDraft((d) => ({ ...d, [submissionId]: latest.current.saved[submissionId] ?? 0 }));
        else {
          setSaved((s) => ({ ...s, [submissionId]: votes }));
          latest.current.saved = { ...latest.current.saved, [submissionId]: votes };
        }
      }
      if (!timer.current) setPending(false);
    });
  }

  function change(submissionId: string, votes: number) {
    setDraft((d) => ({ ...d, [submissionId]: votes }));
    setPending(true);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      timer.current = undefined;
      flush();
    }, QUADRATIC_SETTLE_MS);
  }

  return (
    <>
      <p className="credits" aria-live="polite">
        Credits left: <strong>{budget - spent}</strong> of {budget}{' '}
        <span className="muted">(v votes cost v² credits)</span>
      </p>
      <ul className="plain ballot">
        {competition.submissions.map((s) => {
          const v = draft[s.id] ?? 0;
          const nextCost = (v + 1) * (v + 1) - v * v;
          return (
            <li key={s.id} className="row">
              <span className="grow">{s.title}</span>
              <button
                aria-label={`Fewer votes for ${s.title}`}
                disabled={closed || v === 0}
                onClick={() => change(s.id, v - 1)}
              >
                −
              </button>
              <output aria-label={`Votes for ${s.title}`}>{v}</output>
              <button
                aria-label={`More votes for ${s.title}`}
                disabled={closed || budget - spent < nextCost}
                onClick={() => change(s.id, v + 1)}
              >
                +
              </button>
            </li>
          );
        })}
      </ul>
      <p className="muted" aria-live="polite" data-state={pending ? 'pending' : 'saved'}>
        {pending ? 'Saving…' : Object.keys(saved).length > 0 ? 'Votes saved.' : 'Tap + to give a pitch votes.'}
      </p>
    </>
  );
}

/**
 * Drag a row (mouse, finger or pen: pointer events, so it works on a phone, where HTML drag and
 * drop does not) or use its arrows. The row under the pointer is where the dragged one goes.
 */
function Ranked({ competition, cast, busy }: BallotProps) {
  const ids = competition.submissions.map((s) => s.id);
  const [saved, setSaved] = useBallot<string[] | null>(competition.id, null);
  const [kept, setOrder] = useState<string[]>(saved ?? ids);
  // Pitches added since the ballot was saved go last; removed ones drop out.
  const order = [...kept.filter((id) => ids.includes(id)), ...ids.filter((id) => !kept.includes(id))];
  const [dragged, setDragged] = useState<string | null>(null);
  const list = useRef<HTMLOListElement>(null);
  const title = (id: string) => competition.submissions.find((s) => s.id === id)?.title ?? id;
  const move = (from: number, to: number) => {
    if (from < 0 || to < 0 || to >= order.length || from === to) return;
    const next = [...order];
    const [item] = next.splice(from, 1);
    next.splice(to, 0, item!);
    setOrder(next);
  };
  const startDrag = (event: PointerEvent<HTMLLIElement>, id: string) => {
    if ((event.target as HTMLElement).closest('button') || event.button !== 0) return;
    event.currentTarget.setPointerCapture(event.pointerId);
    setDragged(id);
  };
  const dragOver = (event: PointerEvent<HTMLLIElement>) => {
    if (dragged === null || !list.current) return;
    const rows = [...list.current.children];
    const over = rows.findIndex((row) => event.clientY < row.getBoundingClientRect().bottom);
    move(order.indexOf(dragged), over === -1 ? rows.length - 1 : over);
  };
  return (
    <>
      <p className="muted">Drag to rank, best first (or use the arrows).</p>
      <ol className="plain ballot ranking" aria-label="Your ranking" ref={list}>
        {order.map((id, index) => (
          <li
            key={id}
            className={`row rank-item${dragged === id ? ' dragging' : ''}`}
            onPointerDown={(e) => startDrag(e, id)}
            onPointerMove={dragOver}
            onPointerUp={() => setDragged(null)}
            onPointerCancel={() => setDragged(null)}
            aria-label={`${index + 1}. ${title(id)}`}
          >
            <span className="handle" aria-hidden="true">
              ⠿
            </span>
            <span className="grow">
              {index + 1}. {title(id)}
            </span>
            <button aria-label={`Move ${title(id)} up`} disabled={index === 0} onClick={() => move(index, index - 1)}>
              ↑
            </button>
            <button
              aria-label={`Move ${title(id)} down`}
              disabled={index === order.length - 1}
              onClick={() => move(index, index + 1)}
            >
              ↓
            </button>
          </li>
        ))}
      </ol>
      <Submit
        what="ranking"
        saved={!!saved}
        busy={busy}
        onSubmit={async () => !(await cast({ ranking: order })).error && setSaved(order)}
      />
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
                onChange={(e) =>
                  setApproved(e.target.checked ? [...approved, s.id] : approved.filter((id) => id !== s.id))
                }
              />{' '}
              Approve {s.title}
            </label>
          </li>
        ))}
      </ul>
      <Submit
        what="approvals"
        saved={!!saved}
        busy={busy}
        onSubmit={async () => !(await cast({ approvals: approved })).error && setSaved(approved)}
      />
    </>
  );
}

/** RANKED and APPROVAL send the whole ballot at once; it replaces the previous one. */
function Submit({
  what,
  saved,
  busy,
  onSubmit,
}: {
  what: string;
  saved: boolean;
  busy: boolean;
  onSubmit: () => Promise<unknown>;
}) {
  return (
    <>
      <button className="primary" disabled={busy} onClick={() => void onSubmit()}>
        {saved ? 'Update' : 'Submit'} {what}
      </button>
      {saved && <p className="muted">{what[0]!.toUpperCase() + what.slice(1)} saved.</p>}
    </>
  );
}
