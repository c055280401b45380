/**
 * Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint), Ed25519 only.
 *
 *   <origin>\n<size>\n<base64 root>\n\n— <key name> <base64(key id ‖ signature)>\n
 *
 * key id = first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key); the verifier key is
 * `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. This log signs under its origin, so a checkpoint
 * is accepted only when its origin is the verifier key's name.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { InputError } from '../errors/index.js';
import { sha256 } from './merkle.js';

export interface NoteSigner {
  readonly name: string;
  readonly keyId: Buffer;
  readonly publicKey: Buffer;
  sign(message: Buffer): Buffer;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: Buffer;
  verify(message: Buffer, signature: Buffer): boolean;
}

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
  /** When the log signed it (POSIX seconds): the extension line `timestamp <seconds>`. */
  readonly timestamp?: number;
}

export type CheckpointProblem =
  'CHECKPOINT_MALFORMED' | 'CHECKPOINT_ORIGIN_MISMATCH' | 'CHECKPOINT_SIGNATURE_INVALID';

export type OpenedCheckpoint =
  | { readonly ok: true; readonly checkpoint: Checkpoint }
  | { readonly ok: false; readonly code: CheckpointProblem; readonly detail: string };

const ed25519Algorithm = 0x01;
const pkcs8Ed25519Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const maxNoteLength = 64 * 1024;
const maxSignatures = 100;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const dash = '\u2014';

/** Signed-note key names: non-empty, no Unicode whitespace, no '+', no control characters. */
export function isKeyName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && name.length <= 256 && !/[\s+\u0000-\u001f\u007f]|\p{Cs}/u.test(name);
}

/** `algorithm`: 0x01 for note signatures, 0x04 for cosignature/v1 (c2sp.org/tlog-cosignature). */
export function keyIdOf(name: string, publicKey: Uint8Array, algorithm = ed25519Algorithm): Buffer {
  return sha256(Buffer.from(name, 'utf8'), Buffer.from([0x0a, algorithm]), publicKey).subarray(0, 4);
}

/** The Ed25519 key pair of a 32-byte private key seed: the private key and the raw public key. */
export function ed25519FromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKey: Buffer } {
  if (seed.length !== 32) throw new TypeError('an Ed25519 private key seed is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([pkcs8Ed25519Prefix, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, publicKey: publicKeyBytes(createPublicKey(privateKey)) };
}

/** An Ed25519 public key from its 32 raw bytes; undefined when they are not one. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject | undefined {
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
      format: 'jwk',
    });
  } catch {
    return undefined;
  }
}

/** An Ed25519 note signer from a 32-byte private key seed. */
export function signerFromSeed(name: string, seed: Uint8Array): NoteSigner {
  if (!isKeyName(name)) throw new TypeError('checkpoint signer name must be a signed-note key name');
  const { privateKey, publicKey } = ed25519FromSeed(seed);
  return {
    name,
    keyId: keyIdOf(name, publicKey),
    publicKey,
    sign: (message) => sign(null, message, privateKey),
  };
}

function publicKeyBytes(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  const encoded = Buffer.concat([Buffer.from([ed25519Algorithm]), publicKey]).toString('base64');
  return `${name}+${keyIdOf(name, publicKey).toString('hex')}+${encoded}`;
}

/** Parses `<name>+<hex key id>+<base64(0x01 ‖ key)>`; InputError when it is not an Ed25519 key. */
export function parseVerifierKey(text: string): NoteVerifier {
  // Operator-supplied input: split at the first two '+' only, as base64 may itself contain '+'.
  const trimmed = text.trim();
  const first = trimmed.indexOf('+');
  const second = first < 0 ? -1 : trimmed.indexOf('+', first + 1);
  const malformed = () => new InputError('the verifier key is not an Ed25519 signed-note verifier key');
  if (first < 0 || second < 0) throw malformed();
  const name = trimmed.slice(0, first);
  const idHex = trimmed.slice(first + 1, second);
  const keyBase64 = trimmed.slice(second + 1);
  if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(idHex) || !base64Pattern.test(keyBase64)) throw malformed();
  const raw = Buffer.from(keyBase64, 'base64');
  if (raw.length !== 33 || raw[0] !== ed25519Algorithm) throw malformed();
  const publicKeyRaw = raw.subarray(1);
  const keyId = keyIdOf(name, publicKeyRaw);
  if (keyId.toString('hex') !== idHex) throw malformed();
  const publicKey = ed25519PublicKey(publicKeyRaw);
  if (!publicKey) throw malformed();
  return {
    name,
    keyId,
    verify: (message, signature) => signature.length === 64 && verify(null, message, publicKey, signature),
  };
}

export function checkpointBody(checkpoint: Checkpoint): string {
  if (!isKeyName(checkpoint.origin)) throw new TypeError('checkpoint origin must be a signed-note key name');
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0)
    throw new TypeError('bad checkpoint size');
  if (checkpoint.root.length !== 32) throw new TypeError('checkpoint root must be 32 bytes');
  const { timestamp } = checkpoint;
  if (timestamp !== undefined && (!Number.isSafeInteger(timestamp) || timestamp < 0))
    throw new TypeError('bad checkpoint timestamp');
  const extension = timestamp === undefined ? '' : `timestamp ${timestamp}\n`;
  return `${checkpoint.origin}\n${checkpoint.size}\n${checkpoint.root.toString('base64')}\n${extension}`;
}

/** The signed note for a checkpoint: body, blank line, one signature line. */
export function signCheckpoint(checkpoint: Checkpoint, signer: NoteSigner): string {
  const body = checkpointBody(checkpoint);
  const signature = signer.sign(Buffer.from(body, 'utf8'));
  const line = `${dash} ${signer.name} ${Buffer.concat([signer.keyId, signature]).toString('base64')}\n`;
  return `${body}\n${line}`;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; code: CheckpointProblem; detail: string };

const malformed = (detail: string): { ok: false; code: 'CHECKPOINT_MALFORMED'; detail: string } => ({
  ok: false,
  code: 'CHECKPOINT_MALFORMED',
  detail,
});

/** Splits a signed note into its text and its signature lines, checking only the framing. */
export function splitNote(
  note: string,
): Parsed<{ body: string; signatures: Array<{ name: string; raw: Buffer }> }> {
  // Attacker-controlled: a note from the store, an export file or the network. Bound it before work.
  if (typeof note !== 'string' || note.length > maxNoteLength) return malformed('note missing or too long');
  if (!note.endsWith('\n')) return malformed('note does not end with a newline');
  const separator = note.lastIndexOf('\n\n');
  if (separator < 0) return malformed('no blank line between the text and the signatures');
  const body = note.slice(0, separator + 1);
  const lines = note.slice(separator + 2, -1).split('\n');
  if (lines.length === 0 || lines.length > maxSignatures) return malformed('no signature lines, or too many');
  const signatures: Array<{ name: string; raw: Buffer }> = [];
  for (const line of lines) {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (!match || !base64Pattern.test(match[2])) return malformed('a signature line is malformed');
    const raw = Buffer.from(match[2], 'base64');
    // Canonical base64 only: unused low bits in the last character would give one note two spellings.
    if (raw.toString('base64') !== match[2]) return malformed('a signature line is malformed');
    if (raw.length < 5) return malformed('a signature is too short');
    signatures.push({ name: match[1], raw });
  }
  return { ok: true, value: { body, signatures } };
}

/** Parses checkpoint text (no signature check): origin, size, root. */
function parseBody(body: string): Parsed<Checkpoint> {
  // Attacker-controlled: exact decimal and base64 forms only, so one checkpoint has one encoding.
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3 || lines.some((line) => line.length === 0)) {
    return malformed('checkpoint text needs origin, size and root hash lines');
  }
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!isKeyName(origin)) return malformed('checkpoint origin is not a valid name');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    return malformed('checkpoint tree size is not a decimal integer');
  }
  if (!/^[A-Za-z0-9+/]{43}=$/.test(rootText))
    return malformed('checkpoint root hash is not base64 of 32 bytes');
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText) {
    return malformed('checkpoint root hash is not base64 of 32 bytes');
  }
  const stamp = extensions.map((line) => /^timestamp (0|[1-9][0-9]{0,15})$/.exec(line)).find(Boolean);
  const timestamp = stamp ? Number(stamp[1]) : undefined;
  return { ok: true, value: { origin, size: Number(sizeText), root, ...(stamp && { timestamp }) } };
}

/** The tree size a note claims, before any signature check (to order checkpoints); undefined if malformed. */
export function claimedSize(note: string): number | undefined {
  const split = splitNote(note);
  if (!split.ok) return undefined;
  const parsed = parseBody(split.value.body);
  return parsed.ok ? parsed.value.size : undefined;
}

/** Parses a signed checkpoint and checks it carries a valid signature by `verifier` for its origin. */
export function openCheckpoint(note: string, verifier: NoteVerifier): OpenedCheckpoint {
  const split = splitNote(note);
  if (!split.ok) return split;
  const parsed = parseBody(split.value.body);
  if (!parsed.ok) return parsed;
  const checkpoint = parsed.value;
  if (checkpoint.origin !== verifier.name) {
    return { ok: false, code: 'CHECKPOINT_ORIGIN_MISMATCH', detail: 'checkpoint origin is not the key name' };
  }
  const message = Buffer.from(split.value.body, 'utf8');
  const signed = split.value.signatures.some(
    ({ name, raw }) =>
      name === verifier.name &&
      raw.subarray(0, 4).equals(verifier.keyId) &&
      verifier.verify(message, raw.subarray(4)),
  );
  if (!signed) {
    return {
      ok: false,
      code: 'CHECKPOINT_SIGNATURE_INVALID',
      detail: 'no valid signature by the verifier key',
    };
  }
  return { ok: true, checkpoint };
}
