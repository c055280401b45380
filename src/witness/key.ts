/**
 * The witness key file: one line `PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 ‖ Ed25519 seed)>`, the
 * signed-note private key encoding, readable by the witness's owner only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cosignerFromSeed, formatCosignerKey, newWitnessSeed, type Cosigner } from '../audit/index.js';
import { ConfigError, InputError } from '../errors/index.js';

const prefix = 'PRIVATE+KEY+';

/** Writes a new key to `path` (never over an existing file) and answers its verifier key. */
export function createWitnessKey(path: string, name: string): string {
  let cosigner: Cosigner;
  const seed = newWitnessSeed();
  try {
    cosigner = cosignerFromSeed(name, seed);
  } catch {
    throw new InputError('the witness name must be a signed-note key name (no spaces, no "+")');
  }
  const encoded = Buffer.concat([Buffer.from([0x04]), seed]).toString('base64');
  const line = `${prefix}${name}+${cosigner.keyId.toString('hex')}+${encoded}\n`;
  try {
    writeFileSync(path, line, { mode: 0o600, flag: 'wx' });
  } catch (cause) {
    const exists = (cause as { code?: unknown }).code === 'EEXIST';
    throw new InputError(
      exists ? `${path} exists; a witness key is never overwritten` : `cannot write ${path}`,
    );
  }
  return formatCosignerKey(name, cosigner.publicKey);
}

export function readWitnessKey(path: string): Cosigner {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    throw new ConfigError(`cannot read the witness key file ${path}`);
  }
  const match = /^PRIVATE\+KEY\+([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(text);
  const raw = match ? Buffer.from(match[3], 'base64') : Buffer.alloc(0);
  if (!match || raw.length !== 33 || raw[0] !== 0x04) {
    throw new ConfigError(`${path} is not a witness key file (gatehouse witness init makes one)`);
  }
  const cosigner = cosignerFromSeed(match[1], raw.subarray(1));
  if (cosigner.keyId.toString('hex') !== match[2])
    throw new ConfigError(`${path}: the key id does not match`);
  return cosigner;
}

export function witnessVerifierKey(cosigner: Cosigner): string {
  return formatCosignerKey(cosigner.name, cosigner.publicKey);
}
