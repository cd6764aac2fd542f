import { useSubscription } from 'urql';
import { MyNotificationsDocument, StageMessagesDocument } from '../generated/graphql';

interface StageMessage {
  seq: number;
  text: string;
}

/**
 * Messages from the stage (channel stage:<competitionId>, from the first) and the user's own
 * notifications (announcements, a competition closing). Both are resumable streams: after a drop
 * the kit resumes after the last seq it delivered, so the lists below never miss or repeat one.
 */
export function Feeds({ competitionId }: { competitionId: string }) {
  const [{ data: messages }] = useSubscription(
    { query: StageMessagesDocument, variables: { channel: `stage:${competitionId}`, afterSeq: 0 } },
    (list: StageMessage[] = [], event) => {
      const data = event.channelEvent.data as { text?: unknown } | null;
      return event.channelEvent.type === 'message'
        ? [...list, { seq: event.channelEvent.seq, text: typeof data?.text === 'string' ? data.text : '' }]
        : list;
    },
  );
  const [{ data: notifications }] = useSubscription(
    { query: MyNotificationsDocument },
    (list: { id: string; title: string; body?: string | null }[] = [], event) => [event.notificationAdded, ...list],
  );
  return (
    <>
      <section className="panel" aria-label="Messages from the stage">
        <h2>From the stage</h2>
        <ol className="plain feed" role="log" aria-label="Stage messages">
          {(messages ?? []).map((m) => (
            <li key={m.seq} data-seq={m.seq}>
              {m.text}
            </li>
          ))}
        </ol>
        {!messages?.length && <p className="muted">No messages yet.</p>}
      </section>
      <section className="panel" aria-label="Notifications">
        <h2>Notifications</h2>
        <ul className="plain feed" role="log" aria-label="Notification list">
          {(notifications ?? []).map((n) => (
            <li key={n.id}>
              <strong>{n.title}</strong>
              {n.body && <span className="muted"> — {n.body}</span>}
            </li>
          ))}
        </ul>
        {!notifications?.length && <p className="muted">Nothing yet.</p>}
      </section>
    </>
  );
}
