/** The GraphQL operations the load generator sends; every target answers the same documents. */
import type http from 'node:http';
import { graphql } from './http.js';

export const TALLY_SUBSCRIPTION = /* GraphQL */ `
  subscription Tally($competitionId: ID!) {
    tallyUpdated(competitionId: $competitionId) {
      competitionId
      seq
      publishedAt
      totalVotes
      entries {
        submissionId
        votes
        score
        rank
      }
    }
  }
`;

/**
 * The same selection under another operation name, for the end-of-run probe: a different
 * document is its own shared stream on Ovation, so its first frame is a fresh read of the
 * database, not the newest update the watchers' shared stream has delivered so far (which lags
 * while an overloaded server still works through queued votes).
 */
export const TALLY_PROBE_SUBSCRIPTION = TALLY_SUBSCRIPTION.replace('subscription Tally(', 'subscription TallyProbe(');

export const CAST_VOTE = /* GraphQL */ `
  mutation CastVote($input: CastVoteInput!) {
    castVote(input: $input) {
      vote {
        id
      }
    }
  }
`;

const CREATE_COMPETITION = /* GraphQL */ `
  mutation CreateCompetition($input: CreateCompetitionInput!) {
    createCompetition(input: $input) {
      id
    }
  }
`;
const CREATE_SUBMISSION = /* GraphQL */ `
  mutation CreateSubmission($input: CreateSubmissionInput!) {
    createSubmission(input: $input) {
      id
    }
  }
`;
const OPEN_COMPETITION = /* GraphQL */ `
  mutation OpenCompetition($id: ID!) {
    openCompetition(id: $id) {
      id
      status
    }
  }
`;

export interface Setup {
  competitionId: string;
  submissionIds: string[];
}

export async function setupCompetition(
  agent: http.Agent,
  graphqlUrl: URL,
  adminToken: string,
  submissions: number,
): Promise<Setup> {
  const { createCompetition } = await graphql<{ createCompetition: { id: string } }>(
    agent,
    graphqlUrl,
    CREATE_COMPETITION,
    { input: { title: `bench ${new Date().toISOString()}`, votingMethod: 'SIMPLE' } },
    adminToken,
  );
  const submissionIds: string[] = [];
  for (let i = 0; i < submissions; i++) {
    const { createSubmission } = await graphql<{ createSubmission: { id: string } }>(
      agent,
      graphqlUrl,
      CREATE_SUBMISSION,
      { input: { competitionId: createCompetition.id, title: `entry ${i + 1}` } },
      adminToken,
    );
    submissionIds.push(createSubmission.id);
  }
  await graphql(agent, graphqlUrl, OPEN_COMPETITION, { id: createCompetition.id }, adminToken);
  return { competitionId: createCompetition.id, submissionIds };
}
