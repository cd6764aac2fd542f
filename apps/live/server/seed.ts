/**
 * The demo the example runner starts with: a SIMPLE competition with four pitches, open, and a
 * session running the first one, plus an offer from a judge, so every screen has something to
 * show. Reused when it exists and is still open (the data dir outlives a run).
 */
import type { Role } from '../../../src/generated/prisma/enums.js';

const TITLE = 'Demo pitch night';
const PITCHES = ['Solar kiosks', 'Compost robots', 'Tiny libraries', 'Rainwater drones'];

type Sign = (sub: string, role: Role) => Promise<string>;

async function gql<T>(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) throw new Error(`seed: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export async function seedDemo(url: string, adminToken: string, sign: Sign): Promise<string> {
  const { competitions } = await gql<{ competitions: { id: string; title: string }[] }>(
    url,
    adminToken,
    'query { competitions(status: OPEN) { id title } }',
  );
  const existing = competitions.find((c) => c.title === TITLE);
  if (existing) return existing.id;

  const { createCompetition } = await gql<{ createCompetition: { id: string } }>(
    url,
    adminToken,
    'mutation($t: String!) { createCompetition(input: { title: $t, votingMethod: SIMPLE }) { id } }',
    { t: TITLE },
  );
  const competitionId = createCompetition.id;
  // A pitch with a founder can receive offers (the founder answers them).
  const founder = await gql<{ me: { id: string } }>(url, await sign('demo-founder', 'FOUNDER'), 'query { me { id } }');
  const submissionIds: string[] = [];
  for (const title of PITCHES) {
    const { createSubmission } = await gql<{ createSubmission: { id: string } }>(
      url,
      adminToken,
      'mutation($c: ID!, $t: String!, $f: ID) { createSubmission(input: { competitionId: $c, title: $t, founderId: $f }) { id } }',
      { c: competitionId, t: title, f: submissionIds.length === 0 ? founder.me.id : null },
    );
    submissionIds.push(createSubmission.id);
  }
  const { createSession } = await gql<{ createSession: { id: string } }>(
    url,
    adminToken,
    'mutation($c: ID!, $s: [ID!]!) { createSession(input: { competitionId: $c, submissionIds: $s, presentationSeconds: 180 }) { id } }',
    { c: competitionId, s: submissionIds },
  );
  // START opens the competition's voting too.
  await gql(
    url,
    adminToken,
    'mutation($id: ID!) { controlSession(input: { sessionId: $id, action: START }) { status } }',
    { id: createSession.id },
  );
  const judge = await sign('demo-judge', 'JUDGE');
  await gql(
    url,
    judge,
    'mutation($s: ID!, $p: ID!) { makeOffer(input: { sessionId: $s, submissionId: $p, type: EQUITY, amount: 50000, equityPercentage: 10 }) { id } }',
    { s: createSession.id, p: submissionIds[0] },
  );
  return competitionId;
}
