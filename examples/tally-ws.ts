// examples/tally-ws.ts: prints a competition's live tally, over graphql-ws from Node.
//   TOKEN=$(npm run -s token -- --sub alice) npx tsx examples/tally-ws.ts <competition id>
// Node needs a WebSocket implementation (`ws`); in a browser leave `webSocketImpl` out.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.OVATION_URL ?? 'http://localhost:4000/graphql';
const client = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${process.env.TOKEN}` },
});
for await (const result of client.iterate({
  query:
    'subscription($id: ID!) { tallyUpdated(competitionId: $id) { seq totalVotes entries { submissionId votes score rank } } }',
  variables: { id: process.argv[2] },
})) {
  console.log(JSON.stringify(result.errors ?? result.data?.tallyUpdated));
}
