/**
 * Wallet sign-in cryptography, pure: Solana-style base58 ed25519 public keys and signatures,
 * verified with node:crypto (the raw 32-byte key becomes a KeyObject through its JWK form).
 */
import { createPublicKey, verify } from 'node:crypto';
import bs58 from 'bs58';

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** The bytes of a base58 string of exactly `length` bytes; undefined when it is not one. */
export function decodeBase58(text: string, length: number): Uint8Array | undefined {
  // The longest base58 text of `length` bytes is ~1.37 × length characters: refuse anything longer before decoding.
  if (text.length === 0 || text.length > Math.ceil(length * 1.37) + 1) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = bs58.decode(text);
  } catch {
    return undefined;
  }
  return bytes.length === length ? bytes : undefined;
}

export const encodeBase58 = (bytes: Uint8Array): string => bs58.encode(bytes);

/** Whether `signature` is `publicKey`'s ed25519 signature over exactly `message`'s UTF-8 bytes. */
export function verifyEd25519(publicKey: Uint8Array, message: string, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
    return verify(null, Buffer.from(message, 'utf8'), key, signature);
  } catch {
    return false; // not a point on the curve
  }
}

/** The text a wallet signs. It is stored with the challenge; the signature must cover exactly these bytes. */
export function challengeMessage(c: { publicKey: string; nonce: string; issuedAt: Date; expiresAt: Date }): string {
  return [
    'Ovation sign-in',
    `wallet: ${c.publicKey}`,
    `nonce: ${c.nonce}`,
    `issued: ${c.issuedAt.toISOString()}`,
    `expires: ${c.expiresAt.toISOString()}`,
  ].join('\n');
}
