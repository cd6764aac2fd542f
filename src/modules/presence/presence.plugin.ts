/**
 * Presence's hook in the shared Yoga pipeline (HTTP, SSE and graphql-ws all run through it):
 * every operation (onExecute, onSubscribe) of an authenticated viewer, on any transport, counts as
 * activity (it ends AWAY). Connections themselves are not seen here: every transport reports them
 * to the connection registry (src/realtime/connections.ts), which presence observes
 * (presence.module.ts).
 */
import type { Plugin } from 'graphql-yoga';
import type { Context } from '../../context.js';
import type { PresenceTracker } from './presence.tracker.js';

export function usePresenceActivity(deps: { tracker: PresenceTracker }): Plugin {
  const { tracker } = deps;
  const activity = (context: unknown): void => {
    const viewer = (context as Partial<Context>).viewer;
    if (viewer) tracker.activity(viewer.id);
  };
  return {
    onExecute: ({ args }) => activity(args.contextValue),
    onSubscribe: ({ args }) => activity(args.contextValue),
  };
}
