import { useState, type MouseEvent } from 'react';
import { useMutation } from 'urql';
import { SendReactionDocument, type ReactionType } from '../generated/graphql';
import { errorText } from '../shared/kit';

const TYPES: { type: ReactionType; emoji: string; label: string }[] = [
  { type: 'CLAP', emoji: '👏', label: 'Clap' },
  { type: 'FIRE', emoji: '🔥', label: 'Fire' },
  { type: 'HEART', emoji: '❤️', label: 'Heart' },
  { type: 'WOW', emoji: '😮', label: 'Wow' },
  { type: 'LAUGH', emoji: '😂', label: 'Laugh' },
];

/**
 * Tap where on the pitch you react: the tap's position (0..1 across and down) is the heat map's
 * x/y on the big screen. A keyboard press (no pointer position) reacts at the centre.
 */
export function ReactionPad({ sessionId, pitch }: { sessionId: string; pitch: string }) {
  const [type, setType] = useState<ReactionType>('CLAP');
  const [sent, setSent] = useState(0);
  const [{ error }, sendReaction] = useMutation(SendReactionDocument);

  async function tap(event: MouseEvent<HTMLButtonElement>) {
    const box = event.currentTarget.getBoundingClientRect();
    const pointer = event.detail > 0; // 0: a keyboard "click"
    const x = pointer ? Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)) : 0.5;
    const y = pointer ? Math.min(1, Math.max(0, (event.clientY - box.top) / box.height)) : 0.5;
    const result = await sendReaction({ input: { sessionId, type, intensity: 5, x, y } });
    if (!result.error) setSent((n) => n + 1);
  }

  return (
    <section className="panel" aria-label="Reactions">
      <h2>React</h2>
      <div className="row reaction-types" role="group" aria-label="Reaction type">
        {TYPES.map((t) => (
          <button key={t.type} aria-pressed={type === t.type} onClick={() => setType(t.type)}>
            <span aria-hidden="true">{t.emoji}</span>
            <small>{t.label}</small>
          </button>
        ))}
      </div>
      <button className="stage" aria-label={`Tap the pitch to react: ${pitch}`} onClick={(e) => void tap(e)}>
        <span aria-hidden="true">{TYPES.find((t) => t.type === type)!.emoji}</span>
        <span className="muted">Tap where it moves you</span>
      </button>
      <p className="muted" aria-live="polite">
        {sent} {sent === 1 ? 'reaction' : 'reactions'} sent
      </p>
      {error && (
        <p role="alert" className="error">
          {errorText(error)}
        </p>
      )}
    </section>
  );
}
