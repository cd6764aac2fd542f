import { useConnection } from './kit';

const LABELS: Record<string, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  idle: 'Idle',
  closed: 'Closed',
};

/** The kit's connection state: live and over which transport (ws, sse, poll), or reconnecting. */
export function ConnectionStatus() {
  const { state, transport } = useConnection();
  return (
    <p
      className={`status status-${state}`}
      role="status"
      aria-label="Connection"
      data-state={state}
      data-transport={transport ?? ''}
    >
      <span className="dot" aria-hidden="true" /> {LABELS[state]}
      {state === 'live' && transport
        ? ` · ${transport === 'ws' ? 'WebSocket' : transport === 'sse' ? 'SSE' : 'polling'}`
        : ''}
    </p>
  );
}
