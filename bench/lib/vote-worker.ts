/**
 * The vote generator's process (forked by startVoteWorker in voters.ts): its event loop holds
 * the vote connections and nothing else, so the subscriber sockets bench/run.ts holds cannot delay
 * a vote's send or its timing. { type: 'ready' } out once loaded; then one message in
 * ({ type: 'run', options }) per load phase, one out ({ type: 'result', report } or
 * { type: 'error', message }). Exits when the parent disconnects.
 */
import { runVoters, type VoterOptions } from './voters.js';

process.on('message', (msg: { type: 'run'; options: VoterOptions }) => {
  if (msg.type !== 'run') return;
  runVoters(msg.options).then(
    (report) => process.send?.({ type: 'result', report }),
    (error: unknown) =>
      process.send?.({
        type: 'error',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      }),
  );
});
process.on('disconnect', () => process.exit(0));
// Loaded and listening: the parent waits for this before it schedules a run.
process.send?.({ type: 'ready' });
