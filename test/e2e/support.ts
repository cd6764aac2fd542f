/** Shared set-up for end-to-end files: a competition with submissions, opened, over HTTP. */
import { CreateCompetitionDocument, CreateSubmissionDocument, OpenCompetitionDocument } from '../generated/graphql.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';

export async function openCompetition(
  graphqlUrl: string,
  submissions: number,
): Promise<{ competitionId: string; submissionIds: string[] }> {
  const admin = await tokenFor({ sub: 'e2e-admin', name: 'Admin', role: 'ADMIN' });
  const { createCompetition } = dataOf(
    await execute(
      fetch,
      graphqlUrl,
      CreateCompetitionDocument,
      { input: { title: 'E2E', votingMethod: 'SIMPLE' } },
      admin,
    ),
  );
  const submissionIds: string[] = [];
  for (let i = 0; i < submissions; i += 1) {
    const { createSubmission } = dataOf(
      await execute(
        fetch,
        graphqlUrl,
        CreateSubmissionDocument,
        { input: { competitionId: createCompetition.id, title: `S${i}` } },
        admin,
      ),
    );
    submissionIds.push(createSubmission.id);
  }
  dataOf(await execute(fetch, graphqlUrl, OpenCompetitionDocument, { id: createCompetition.id }, admin));
  return { competitionId: createCompetition.id, submissionIds };
}
