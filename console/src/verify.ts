/**
 * The audit log checked in the browser with WebCrypto, trusting only the verifier key: the checkpoint's
 * Ed25519 signature (C2SP signed note), each event's RFC 6962 leaf hash over its RFC 8785 canonical
 * JSON, its inclusion proof and the consistency of the checkpoints this browser has seen (RFC 9162).
 * Everything here parses what the server sent, so every length and form is checked before use.
 */
import canonicalize from 'canonicalize';

export interface VerifierKey {
  name: string;
  keyId: Uint8Array;
  key: CryptoKey;
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Uint8Array;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const utf8 = new TextEncoder();

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', joined));
}

const fromBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toHex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

function fromHex(text: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{64}$/.test(text)) return undefined;
  return Uint8Array.from(text.match(/../g)!, (pair) => parseInt(pair, 16));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** `<name>+<hex key id>+<base64(0x01 ‖ key)>`; the key id must be the one the name and key give. */
export async function importVerifierKey(text: string): Promise<Checked<VerifierKey>> {
  const match = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(text.trim());
  if (!match) return { ok: false, reason: 'not a signed-note verifier key' };
  const [, name, idHex, encoded] = match as unknown as [string, string, string, string];
  const raw = fromBase64(encoded);
  if (raw.length !== 33 || raw[0] !== 0x01) return { ok: false, reason: 'not an Ed25519 key' };
  const publicKey = raw.slice(1);
  const keyId = (await sha256(utf8.encode(name), new Uint8Array([0x0a, 0x01]), publicKey)).slice(0, 4);
  if (toHex(keyId) !== idHex) return { ok: false, reason: 'the key id does not match the key' };
  const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  return { ok: true, value: { name, keyId, key } };
}

/** A signed checkpoint note, accepted only with a valid signature by `verifier` for its own origin. */
export async function openCheckpoint(note: string, verifier: VerifierKey): Promise<Checked<Checkpoint>> {
  const separator = note.lastIndexOf('\n\n');
  if (note.length > 65536 || separator < 0 || !note.endsWith('\n'))
    return { ok: false, reason: 'malformed note' };
  const body = note.slice(0, separator + 1);
  const [origin, sizeText, rootText, ...rest] = body.slice(0, -1).split('\n');
  // C2SP tlog-checkpoint: extension lines (the log's timestamp) may follow the root, none of them empty.
  const extensionsOk = rest.every((line) => line.length > 0);
  if (!origin || !sizeText || !rootText || !extensionsOk || !/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) {
    return { ok: false, reason: 'malformed checkpoint text' };
  }
  if (origin !== verifier.name) return { ok: false, reason: 'the checkpoint is not for this key' };
  const root = /^[A-Za-z0-9+/]{43}=$/.test(rootText) ? fromBase64(rootText) : new Uint8Array();
  if (root.length !== 32) return { ok: false, reason: 'malformed root hash' };
  for (const line of note.slice(separator + 2, -1).split('\n')) {
    const signed = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/u.exec(line);
    if (!signed || signed[1] !== verifier.name) continue;
    const raw = fromBase64(signed[2]!);
    if (raw.length !== 68 || !equal(raw.slice(0, 4), verifier.keyId)) continue;
    const valid = await crypto.subtle.verify(
      { name: 'Ed25519' },
      verifier.key,
      raw.slice(4),
      utf8.encode(body),
    );
    if (valid) return { ok: true, value: { origin, size: Number(sizeText), root } };
    return { ok: false, reason: 'the checkpoint signature is not valid' };
  }
  return { ok: false, reason: 'no signature by this key' };
}

/** RFC 6962 leaf hash of an event: SHA-256(0x00 ‖ RFC 8785 canonical JSON). */
export async function leafHash(event: unknown): Promise<Uint8Array> {
  return sha256(new Uint8Array([0x00]), utf8.encode(canonicalize(event) ?? ''));
}

const node = (left: Uint8Array, right: Uint8Array) => sha256(new Uint8Array([0x01]), left, right);

function parseProof(hashes: unknown): Uint8Array[] | undefined {
  if (!Array.isArray(hashes) || hashes.length > 64) return undefined;
  const parsed = hashes.map((h) => (typeof h === 'string' ? fromHex(h) : undefined));
  return parsed.every((h): h is Uint8Array => h !== undefined) ? parsed : undefined;
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to must be the checkpoint's. */
export async function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  hashes: unknown,
  root: Uint8Array,
): Promise<Checked<true>> {
  const proof = parseProof(hashes);
  if (!proof || index >= size) return { ok: false, reason: 'malformed inclusion proof' };
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return { ok: false, reason: 'inclusion proof is too long' };
    if (fn % 2 === 1 || fn === sn) {
      r = await node(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'inclusion proof is too short' };
  return equal(r, root)
    ? { ok: true, value: true }
    : { ok: false, reason: 'inclusion proof does not lead to the signed root' };
}

/** RFC 9162 §2.1.4.2: the older checkpoint's tree is a prefix of the newer one's. */
export async function verifyConsistency(
  older: Checkpoint,
  newer: Checkpoint,
  hashes: unknown,
): Promise<Checked<true>> {
  const proof = parseProof(hashes);
  if (!proof || older.size > newer.size) return { ok: false, reason: 'malformed consistency proof' };
  if (older.size === newer.size) {
    return proof.length === 0 && equal(older.root, newer.root)
      ? { ok: true, value: true }
      : { ok: false, reason: 'two roots for one tree size' };
  }
  if (older.size === 0)
    return proof.length === 0
      ? { ok: true, value: true }
      : { ok: false, reason: 'malformed consistency proof' };
  const path = (older.size & (older.size - 1)) === 0 ? [older.root, ...proof] : proof;
  if (path.length === 0) return { ok: false, reason: 'consistency proof is empty' };
  let fn = older.size - 1;
  let sn = newer.size - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return { ok: false, reason: 'consistency proof is too long' };
    if (fn % 2 === 1 || fn === sn) {
      fr = await node(c, fr);
      sr = await node(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await node(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(fr, older.root) || !equal(sr, newer.root)) {
    return { ok: false, reason: 'the newer checkpoint does not extend the older one' };
  }
  return { ok: true, value: true };
}

export { toHex };
