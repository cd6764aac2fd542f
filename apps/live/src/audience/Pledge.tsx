import { useState } from 'react';
import { useMutation } from 'urql';
import { PledgeDocument, type LiveSessionFragment } from '../generated/graphql';
import { errorText } from '../shared/kit';

/** A virtual pledge on the pitch on stage (the investment pool on the big screen). Sets, not adds. */
export function Pledge({ session }: { session: LiveSessionFragment }) {
  const pitch = session.currentSubmission;
  const [amount, setAmount] = useState('100');
  const [{ data, error, fetching }, pledge] = useMutation(PledgeDocument);
  if (!pitch) return null;
  return (
    <section className="panel" aria-label="Invest">
      <h2>Invest in {pitch.title}</h2>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void pledge({ input: { sessionId: session.id, submissionId: pitch.id, amount: Number(amount) } });
        }}
      >
        <label className="grow">
          Pledge amount
          <input type="number" min={0} step={10} value={amount} onChange={(e) => setAmount(e.target.value)} />
        </label>
        <button type="submit" disabled={fetching}>
          Pledge
        </button>
      </form>
      {data && <p className="muted">Pledged. {data.pledge.remaining} left to pledge.</p>}
      {error && (
        <p role="alert" className="error">
          {errorText(error)}
        </p>
      )}
    </section>
  );
}
