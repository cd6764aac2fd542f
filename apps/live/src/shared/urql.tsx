/**
 * urql on the kit (the audience phone and the big screen): queries and mutations over HTTP,
 * subscriptions through @ovation/client (ovationExchange), and the hooks both screens use.
 */
import type { OvationClient } from '@ovation/client';
import { ovationExchange } from '@ovation/client/urql';
import { useEffect, useMemo } from 'react';
import { Client, fetchExchange, useQuery, useSubscription } from 'urql';
import {
  ActivityDocument,
  CompetitionDocument,
  SessionUpdatedDocument,
  SessionsDocument,
  StandingsDocument,
  type LiveSessionFragment,
} from '../generated/graphql';
import { currentSession } from './sessions';

export function createUrqlClient(apiUrl: string, ovation: OvationClient, token: () => string | null): Client {
  return new Client({
    url: apiUrl,
    // No document cache: every screen shows live state, which the subscriptions keep current.
    exchanges: [fetchExchange, ovationExchange(ovation)],
    requestPolicy: 'network-only',
    fetchOptions: () => {
      const current = token();
      return current ? { headers: { authorization: `Bearer ${current}` } } : {};
    },
  });
}

export function useCompetition(competitionId: string | null) {
  const [{ data, error }] = useQuery({
    query: CompetitionDocument,
    variables: { id: competitionId ?? '' },
    pause: !competitionId,
  });
  return { competition: data?.competition ?? null, error };
}

/** The standings as tallyUpdated delivers them: the current ones at once, then every change. */
export function useStandings(competitionId: string | null) {
  const [{ data }] = useSubscription({
    query: StandingsDocument,
    variables: { competitionId: competitionId ?? '' },
    pause: !competitionId,
  });
  return data?.tallyUpdated ?? null;
}

/**
 * The competition's current session, live. The competition's activity feed (channel
 * activity:<id>, written by the server) says when a session is created or changes, so a page
 * opened before the organiser created the session still finds it.
 */
export function useCurrentSession(competitionId: string | null): LiveSessionFragment | null {
  const [{ data }, refetch] = useQuery({
    query: SessionsDocument,
    variables: { competitionId: competitionId ?? '' },
    pause: !competitionId,
  });
  const [{ data: activity }] = useSubscription({
    query: ActivityDocument,
    variables: { channel: `activity:${competitionId}` },
    pause: !competitionId,
  });
  const candidate = useMemo(() => currentSession(data?.sessions ?? []), [data]);
  useEffect(() => {
    const event = activity?.channelEvent;
    if (event?.type !== 'SESSION_UPDATED') return;
    const sessionId = (event.data as { sessionId?: string } | null)?.sessionId;
    if (sessionId !== candidate?.id || (event.data as { status?: string }).status === 'ENDED') refetch();
  }, [activity, candidate?.id, refetch]);
  const [{ data: live }] = useSubscription({
    query: SessionUpdatedDocument,
    variables: { sessionId: candidate?.id ?? '' },
    pause: !candidate,
  });
  const updated = live?.sessionUpdated;
  return updated && updated.id === candidate?.id ? updated : candidate;
}
