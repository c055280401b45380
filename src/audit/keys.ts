/** The checkpoint signing key: an Ed25519 seed kept encrypted in the SecretStore, made on first use. */
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import { formatVerifierKey, isKeyName, signerFromSeed, type NoteSigner } from './checkpoint.js';

const secretName = 'audit/checkpoint-signing-key';

export function assertOrigin(origin: string): void {
  if (typeof origin !== 'string' || !isKeyName(origin)) {
    throw new TypeError('audit origin must be non-empty, without spaces or "+" (it names the signing key)');
  }
}

/** The signer for `origin`; two processes starting at once agree on one key (first writer wins). */
export async function loadSigner(secrets: SecretStore, origin: string): Promise<NoteSigner> {
  assertOrigin(origin);
  const seed = (await secrets.get(secretName)) ?? (await secrets.putIfAbsent(secretName, newSeed()));
  if (seed.length !== 32) {
    throw new ConfigError(`secrets: ${secretName} is not a 32-byte Ed25519 key`);
  }
  return signerFromSeed(origin, seed);
}

export async function verifierKeyOf(secrets: SecretStore, origin: string): Promise<string> {
  const signer = await loadSigner(secrets, origin);
  return formatVerifierKey(signer.name, signer.publicKey);
}

/**
 * A fresh seed whose verifier key's base64 part holds no '+'. Some verifiers split the whole
 * `name+id+key` string on every '+' (the signed-note spec splits only at the first two), so such a key
 * works with all of them; the choice costs one bit of the 256.
 */
function newSeed(): Buffer {
  for (;;) {
    const seed = randomBytes(32);
    if (formatVerifierKey('k', signerFromSeed('k', seed).publicKey).split('+').length === 3) return seed;
  }
}
