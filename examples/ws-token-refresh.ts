// examples/ws-token-refresh.ts: a graphql-ws connection that outlives its tokens. Halfway through
// each token's lifetime it sends a new one in-band (a `ping`); reconnects use the newest token.
//   npx tsx examples/ws-token-refresh.ts [token lifetime, default 1h]
import { execFileSync } from 'node:child_process';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.OVATION_URL ?? 'http://localhost:4000/graphql';
const lifetime = process.argv[2] ?? '1h';

// Where tokens come from: your identity provider, or wallet sign-in. Here the dev token script.
const freshToken = (): string =>
  execFileSync('npm', ['run', '-s', 'token', '--', '--sub', 'alice', '--expires', lifetime], {
    encoding: 'utf8',
  }).trim();
const expiresAtMs = (token: string): number =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;

let token = freshToken();
let socket: WebSocket | undefined;
const client = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket,
  connectionParams: () => ({ authorization: `Bearer ${token}` }), // called on every (re)connect
  on: {
    connected: (s) => (socket = s as WebSocket),
    pong: (_received, payload) => {
      const answer = payload as { refreshed?: boolean; expiresAt?: string } | undefined;
      if (answer?.refreshed) console.log('refreshed until', answer.expiresAt);
    },
  },
});

function refreshHalfway(): void {
  setTimeout(
    () => {
      token = freshToken();
      socket?.send(JSON.stringify({ type: 'ping', payload: { authorization: `Bearer ${token}` } }));
      refreshHalfway();
    },
    (expiresAtMs(token) - Date.now()) / 2,
  );
}
refreshHalfway();

for await (const result of client.iterate({ query: 'subscription { notificationAdded { title body } }' })) {
  console.log(JSON.stringify(result.errors ?? result.data?.notificationAdded));
}
