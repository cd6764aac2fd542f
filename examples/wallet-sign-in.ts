// examples/wallet-sign-in.ts: signs in with an ed25519 key pair made by node:crypto (in a browser,
// the wallet adapter's signMessage() signs instead).   npx tsx examples/wallet-sign-in.ts
import { generateKeyPairSync, sign } from 'node:crypto';
import bs58 from 'bs58';

const url = process.env.OVATION_URL ?? 'http://localhost:4000/graphql';

/** Sends one GraphQL operation; returns its data, throws its errors. */
async function gql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const { data, errors } = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (errors?.length || !data) throw new Error(errors?.map((e) => e.message).join('; ') ?? `HTTP ${response.status}`);
  return data;
}

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
// A Solana-style wallet address: the raw 32-byte public key in base58.
const wallet = bs58.encode(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));

const { walletChallenge } = await gql<{ walletChallenge: { message: string } }>(
  'mutation($k: String!) { walletChallenge(publicKey: $k) { message } }',
  { k: wallet },
);
// Sign the exact UTF-8 bytes of the message; send the 64-byte signature in base58.
const signature = bs58.encode(sign(null, Buffer.from(walletChallenge.message, 'utf8'), privateKey));
const { walletSignIn } = await gql<{ walletSignIn: { token: string; user: { id: string; role: string } } }>(
  'mutation($k: String!, $s: String!) { walletSignIn(publicKey: $k, signature: $s) { token user { id role } } }',
  { k: wallet, s: signature },
);
console.log(`signed in as ${walletSignIn.user.id} (${walletSignIn.user.role}); token: ${walletSignIn.token}`);
