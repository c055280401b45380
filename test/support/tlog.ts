/**
 * A second, deliberately separate reading of the specifications the audit log follows, for tests to check
 * our code against: RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) verification as the RFC
 * writes them, RFC 6962 leaf and node hashes, RFC 8785 canonical JSON for the JSON values an audit event
 * holds, and a C2SP signed-note checkpoint opened with node:crypto. It imports nothing from src/, so a bug
 * in src/audit is not mirrored here; the RFC 6962 known-answer vectors in src/audit/merkle.test.ts pin both.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

export const leafHash = (data: Uint8Array): Buffer => sha256(Buffer.from([0]), data);
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer =>
  sha256(Buffer.from([1]), left, right);

/** RFC 8785 for what an audit event holds: strings, finite numbers, booleans, null, arrays, objects. */
export function jcs(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${jcs(v)}`).join(',')}}`;
}

/** RFC 9162 §2.1.3.2: `fn` and `sn` walk up from the leaf; a right-edge node is skipped up to its level. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Buffer,
  proof: Buffer[],
  root: Buffer,
): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2, with the old root prepended when the old size is a power of two. */
export function verifyConsistency(
  m: number,
  n: number,
  oldRoot: Buffer,
  newRoot: Buffer,
  proof: Buffer[],
): boolean {
  if (m === n) return proof.length === 0 && oldRoot.equals(newRoot);
  if (m === 0 || m > n || proof.length === 0) return false;
  const path = (m & (m - 1)) === 0 ? [oldRoot, ...proof] : proof;
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}

export interface OpenedNote {
  origin: string;
  size: number;
  root: Buffer;
  signed: boolean;
}

/** Opens a C2SP tlog-checkpoint note; `signed` when a line carries a valid signature of `verifierKey`. */
export function openCheckpoint(text: string, verifierKey: string): OpenedNote {
  const split = text.indexOf('\n\n');
  if (split < 0) throw new Error('no blank line between the note body and its signatures');
  const body = text.slice(0, split + 1);
  const [origin = '', sizeLine = '', rootLine = ''] = body.split('\n');
  const [name = '', keyIdHex = '', ...rest] = verifierKey.trim().split('+');
  const keyBytes = Buffer.from(rest.join('+'), 'base64');
  if (keyBytes[0] !== 1 || keyBytes.length !== 33) throw new Error('not an Ed25519 signed-note verifier key');
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: keyBytes.subarray(1).toString('base64url') },
    format: 'jwk',
  });
  const keyId = sha256(Buffer.from(name), Buffer.from([0x0a, 0x01]), keyBytes.subarray(1)).subarray(0, 4);
  let signed = false;
  for (const line of text.slice(split + 2).split('\n')) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match || match[1] !== name || keyIdHex.toLowerCase() !== keyId.toString('hex')) continue;
    const raw = Buffer.from(match[2] as string, 'base64');
    if (raw.subarray(0, 4).equals(keyId) && verify(null, Buffer.from(body), publicKey, raw.subarray(4)))
      signed = true;
  }
  return { origin, size: Number(sizeLine), root: Buffer.from(rootLine, 'base64'), signed };
}
