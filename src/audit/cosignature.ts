/**
 * Witness cosignatures (c2sp.org/tlog-cosignature, Ed25519 "cosignature/v1"): a note signature line
 *
 *   — <witness name> base64(key id ‖ u64 big-endian timestamp ‖ Ed25519 signature)
 *
 * over "cosignature/v1\ntime <timestamp>\n" followed by the whole checkpoint body. The key id is
 * SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]; the verifier key is `<name>+<hex id>+<base64(0x04 ‖ key)>`.
 */
import { randomBytes, sign, verify } from 'node:crypto';
import { InputError } from '../errors/index.js';
import { ed25519FromSeed, ed25519PublicKey, isKeyName, keyIdOf, splitNote } from './checkpoint.js';

const cosignatureAlgorithm = 0x04;
const dash = '\u2014';

export interface Cosigner {
  readonly name: string;
  readonly keyId: Buffer;
  readonly publicKey: Buffer;
  /** The cosignature line (with its newline) over a checkpoint body, timestamped `time` (POSIX seconds). */
  cosign(body: string, time: number): string;
}

export interface CosignatureVerifier {
  readonly name: string;
  readonly keyId: Buffer;
  /** The cosignature's timestamp when `raw` (key id ‖ timestamp ‖ signature) is valid over `body`. */
  verify(body: string, raw: Buffer): number | undefined;
}

/** A witness's valid cosignature on a checkpoint. */
export interface Cosignature {
  readonly witness: string;
  /** POSIX seconds. */
  readonly time: number;
}

function cosignedMessage(body: string, time: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${time}\n${body}`, 'utf8');
}

export function cosignerFromSeed(name: string, seed: Uint8Array): Cosigner {
  if (!isKeyName(name)) throw new TypeError('a witness name must be a signed-note key name');
  const { privateKey, publicKey } = ed25519FromSeed(seed);
  const keyId = keyIdOf(name, publicKey, cosignatureAlgorithm);
  return {
    name,
    keyId,
    publicKey,
    cosign(body, time) {
      const stamp = Buffer.alloc(8);
      stamp.writeBigUInt64BE(BigInt(time));
      const signature = sign(null, cosignedMessage(body, time), privateKey);
      return `${dash} ${name} ${Buffer.concat([keyId, stamp, signature]).toString('base64')}\n`;
    },
  };
}

export function formatCosignerKey(name: string, publicKey: Uint8Array): string {
  const encoded = Buffer.concat([Buffer.from([cosignatureAlgorithm]), publicKey]).toString('base64');
  return `${name}+${keyIdOf(name, publicKey, cosignatureAlgorithm).toString('hex')}+${encoded}`;
}

/** Parses a witness verifier key; InputError when it is not an Ed25519 cosignature/v1 key. */
export function parseCosignerKey(text: string): CosignatureVerifier {
  const malformed = () => new InputError('the witness key is not an Ed25519 cosignature/v1 verifier key');
  // Split at the first two '+' only: base64 may itself contain '+'.
  const trimmed = String(text).trim();
  const first = trimmed.indexOf('+');
  const second = first < 0 ? -1 : trimmed.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw malformed();
  const name = trimmed.slice(0, first);
  const raw = Buffer.from(trimmed.slice(second + 1), 'base64');
  if (!isKeyName(name) || raw.length !== 33 || raw[0] !== cosignatureAlgorithm) throw malformed();
  const keyId = keyIdOf(name, raw.subarray(1), cosignatureAlgorithm);
  if (keyId.toString('hex') !== trimmed.slice(first + 1, second)) throw malformed();
  const publicKey = ed25519PublicKey(raw.subarray(1));
  if (!publicKey) throw malformed();
  return {
    name,
    keyId,
    verify(body, signature) {
      if (signature.length !== 4 + 8 + 64 || !signature.subarray(0, 4).equals(keyId)) return undefined;
      const time = signature.readBigUInt64BE(4);
      if (time > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
      const valid = verify(null, cosignedMessage(body, Number(time)), publicKey, signature.subarray(12));
      return valid ? Number(time) : undefined;
    },
  };
}

/** The distinct witnesses among `witnesses` whose cosignature on `note` verifies, in the order given. */
export function validCosignatures(note: string, witnesses: readonly CosignatureVerifier[]): Cosignature[] {
  const split = splitNote(note);
  if (!split.ok) return [];
  const { body, signatures } = split.value;
  const found: Cosignature[] = [];
  for (const witness of witnesses) {
    if (found.some((c) => c.witness === witness.name)) continue;
    for (const { name, raw } of signatures) {
      const time = name === witness.name ? witness.verify(body, raw) : undefined;
      if (time !== undefined) {
        found.push({ witness: witness.name, time });
        break;
      }
    }
  }
  return found;
}

/** The note with `lines` (signature lines, each ending in a newline) added after its own. */
export function withSignatureLines(note: string, lines: readonly string[]): string {
  const present = new Set(note.split('\n').map((line) => `${line}\n`));
  return note + lines.filter((line) => !present.has(line)).join('');
}

/** A fresh witness key seed. */
export function newWitnessSeed(): Buffer {
  return randomBytes(32);
}
