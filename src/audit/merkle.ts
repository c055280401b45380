/**
 * RFC 6962 / RFC 9162 Merkle tree hashing, compact ranges and proofs, as pure functions.
 *
 * Node addressing: node (level L, index i) is the hash of the perfect subtree over leaves
 * [i·2^L, (i+1)·2^L); level 0 nodes are leaf hashes. Proof functions take a `GetNode` and read only
 * perfect subtrees, O(log n) of them, so a store can answer them from saved subtree hashes.
 *
 * Sizes and indexes are plain numbers (safe integers); no 32-bit bitwise operators are used on them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** Answers the hash of a complete subtree; throws when it is not available. */
export type GetNode = (level: number, index: number) => Uint8Array;

const leafPrefix = Buffer.from([0x00]);
const nodePrefix = Buffer.from([0x01]);

export function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** SHA-256(0x00 ‖ data). */
export function hashLeaf(data: Uint8Array): Buffer {
  return sha256(leafPrefix, data);
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(nodePrefix, left, right);
}

/** The root of the empty tree: SHA-256 of the empty string. */
export const emptyRoot: Buffer = sha256();

/** Constant-time equality of two hashes (false, not an exception, when lengths differ). */
export function hashEquals(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function nodeKey(level: number, index: number): string {
  return `${level}:${index}`;
}

function assertSize(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`${name} must be a non-negative safe integer`);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** The largest power of two strictly less than n (n ≥ 2): RFC 9162's k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The perfect subtrees that make up leaves [begin, end), largest first, for a range that appears in
 * the RFC 9162 recursion (begin is a multiple of the largest power of two below end - begin).
 */
export function rangeNodes(begin: number, end: number): NodeId[] {
  const nodes: NodeId[] = [];
  let start = begin;
  while (start < end) {
    const size = end - start;
    const piece = isPowerOfTwo(size) ? size : splitPoint(size);
    const level = Math.round(Math.log2(piece));
    nodes.push({ level, index: start / piece });
    start += piece;
  }
  return nodes;
}

/** MTH(D[begin:end]) from the perfect subtrees that cover it. */
export function subtreeHash(begin: number, end: number, get: GetNode): Buffer {
  if (end <= begin) return emptyRoot;
  const nodes = rangeNodes(begin, end);
  let hash: Buffer = Buffer.from(get(nodes[nodes.length - 1].level, nodes[nodes.length - 1].index));
  for (let i = nodes.length - 2; i >= 0; i--) hash = hashChildren(get(nodes[i].level, nodes[i].index), hash);
  return hash;
}

/** The root of the tree of the first `size` leaves. */
export function rootAt(size: number, get: GetNode): Buffer {
  assertSize(size, 'size');
  return subtreeHash(0, size, get);
}

/** RFC 9162 §2.1.3.1 PATH(index, D[size]): sibling hashes, deepest first. */
export function inclusionProof(index: number, size: number, get: GetNode): Buffer[] {
  assertSize(index, 'index');
  assertSize(size, 'size');
  if (index >= size) throw new TypeError('index must be less than size');
  const proof: Buffer[] = [];
  const path = (m: number, begin: number, end: number): void => {
    const n = end - begin;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      path(m, begin, begin + k);
      proof.push(subtreeHash(begin + k, end, get));
    } else {
      path(m - k, begin + k, end);
      proof.push(subtreeHash(begin, begin + k, get));
    }
  };
  path(index, 0, size);
  return proof;
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]); empty when m = n or m = 0. */
export function consistencyProof(m: number, n: number, get: GetNode): Buffer[] {
  assertSize(m, 'from');
  assertSize(n, 'to');
  if (m > n) throw new TypeError('from must not exceed to');
  if (m === 0 || m === n) return [];
  const proof: Buffer[] = [];
  const subproof = (mm: number, begin: number, end: number, complete: boolean): void => {
    const size = end - begin;
    if (mm === size) {
      if (!complete) proof.push(subtreeHash(begin, end, get));
      return;
    }
    const k = splitPoint(size);
    if (mm <= k) {
      subproof(mm, begin, begin + k, complete);
      proof.push(subtreeHash(begin + k, end, get));
    } else {
      subproof(mm - k, begin + k, end, false);
      proof.push(subtreeHash(begin, begin + k, get));
    }
  };
  subproof(m, 0, n, true);
  return proof;
}

/** Why a proof does not verify, checked in this order before any hashing (as transparency-dev/merkle). */
export type ProofFailure = 'INVALID_SIZES' | 'BAD_HASH_SIZE' | 'WRONG_PROOF_SIZE' | 'ROOT_MISMATCH';

export type ProofCheck =
  { readonly ok: true } | { readonly ok: false; readonly reason: ProofFailure; readonly problem: string };

const proven: ProofCheck = { ok: true };
const hashSize = 32;

function refuted(reason: ProofFailure, problem: string): ProofCheck {
  return { ok: false, reason, problem };
}

function badHashSize(hashes: Readonly<Record<string, readonly Uint8Array[]>>): ProofCheck | undefined {
  for (const [name, list] of Object.entries(hashes)) {
    const at = list.findIndex((hash) => hash.length !== hashSize);
    if (at >= 0) {
      const which = list.length > 1 ? `${name} ${at}` : name;
      return refuted('BAD_HASH_SIZE', `${which} is ${list[at].length} bytes, not ${hashSize}`);
    }
  }
  return undefined;
}

/** Digits of a non-negative safe integer in base 2 (BigInt: sizes go past 32 bits). */
const bitsOf = (n: number | bigint) => (n === 0 || n === 0n ? '' : BigInt(n).toString(2));

/**
 * How long an inclusion proof for `index` in a tree of `size` is: the `inner` part below the point
 * where the paths to index and to the last leaf part, and the `border` part above it.
 */
function inclusionLength(index: number, size: number): { inner: number; border: number } {
  const inner = bitsOf(BigInt(index) ^ BigInt(size - 1)).length;
  const border = [...bitsOf(BigInt(index) >> BigInt(inner))].filter((bit) => bit === '1').length;
  return { inner, border };
}

/** The number of trailing zero bits of n > 0. */
function trailingZeros(n: number): number {
  const bits = bitsOf(n);
  return bits.length - 1 - bits.lastIndexOf('1');
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `root`? Sizes,
 * hash lengths and the exact proof length are checked before hashing, and a failure says which.
 */
export function checkInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): ProofCheck {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    return refuted('INVALID_SIZES', `index ${index} is not in a tree of ${size}`);
  }
  const badSize = badHashSize({ leaf: [leaf], root: [root], 'proof hash': proof });
  if (badSize) return badSize;
  const { inner, border } = inclusionLength(index, size);
  if (proof.length !== inner + border) {
    return refuted('WRONG_PROOF_SIZE', `the proof has ${proof.length} hashes, not ${inner + border}`);
  }
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return hashEquals(r, root) ? proven : refuted('ROOT_MISMATCH', 'the proof leads to another root');
}

export function verifyInclusion(...args: Parameters<typeof checkInclusion>): boolean {
  return checkInclusion(...args).ok;
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show the tree of size m with `oldRoot` is a prefix of size n's?
 * Checked like checkInclusion: sizes, hash lengths and the exact proof length first.
 */
export function checkConsistency(
  m: number,
  n: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): ProofCheck {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) {
    return refuted('INVALID_SIZES', `a tree of ${m} cannot be a prefix of a tree of ${n}`);
  }
  const badSize = badHashSize({ 'old root': [oldRoot], 'new root': [newRoot], 'proof hash': proof });
  if (badSize) return badSize;
  const wrongLength = (want: number) =>
    refuted('WRONG_PROOF_SIZE', `the proof has ${proof.length} hashes, not ${want}`);
  if (m === n || m === 0) {
    if (proof.length !== 0) return wrongLength(0);
    if (m === n && !hashEquals(oldRoot, newRoot)) {
      return refuted('ROOT_MISMATCH', `two trees of ${n} with different roots`);
    }
    return proven;
  }
  // The proof's first hash is the subtree of 2^shift leaves that ends the old tree, unless the old tree
  // is that subtree itself, whose root the verifier already has.
  const { inner: fullInner, border } = inclusionLength(m - 1, n);
  const shift = trailingZeros(m);
  const start = isPowerOfTwo(m) ? 0 : 1;
  if (proof.length !== start + fullInner - shift + border) {
    return wrongLength(start + fullInner - shift + border);
  }
  const path = start === 0 ? [oldRoot, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0];
  let sr: Uint8Array = path[0];
  for (const c of path.slice(1)) {
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (!hashEquals(fr, oldRoot)) return refuted('ROOT_MISMATCH', `the proof leads to another root of ${m}`);
  if (!hashEquals(sr, newRoot)) return refuted('ROOT_MISMATCH', `the proof leads to another root of ${n}`);
  return proven;
}

export function verifyConsistency(...args: Parameters<typeof checkConsistency>): boolean {
  return checkConsistency(...args).ok;
}

/**
 * A compact range: the perfect subtrees covering [0, size), largest first — the right edge of the
 * tree, all an appender needs.
 */
export interface CompactRange {
  readonly size: number;
  readonly hashes: readonly Buffer[];
}

export const emptyRange: CompactRange = { size: 0, hashes: [] };

/** The node ids of the compact range of a tree of `size` leaves, largest first. */
export function compactRangeNodes(size: number): NodeId[] {
  assertSize(size, 'size');
  return size === 0 ? [] : rangeNodes(0, size);
}

export function compactRangeFrom(size: number, get: GetNode): CompactRange {
  return { size, hashes: compactRangeNodes(size).map((n) => Buffer.from(get(n.level, n.index))) };
}

/**
 * Appends one leaf; calls `onNode` for every interior node it completes (level ≥ 1), bottom up.
 */
export function appendLeaf(
  range: CompactRange,
  leaf: Buffer,
  onNode?: (level: number, index: number, hash: Buffer) => void,
): CompactRange {
  const hashes = [...range.hashes, leaf];
  let n = range.size;
  let level = 0;
  while (n % 2 === 1) {
    const right = hashes.pop() as Buffer;
    const left = hashes.pop() as Buffer;
    const hash = hashChildren(left, right);
    hashes.push(hash);
    level += 1;
    n = Math.floor(n / 2);
    onNode?.(level, n, hash);
  }
  return { size: range.size + 1, hashes };
}

/** The root of the tree a compact range describes. */
export function rangeRoot(range: CompactRange): Buffer {
  const { hashes } = range;
  if (hashes.length === 0) return emptyRoot;
  let root = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) root = hashChildren(hashes[i], root);
  return root;
}

/**
 * The node ids a computation over `GetNode` reads, without reading any: the computation is run
 * against placeholder hashes (proof shapes depend only on sizes and indexes, never on hash values).
 */
export function nodesRead(compute: (get: GetNode) => unknown): NodeId[] {
  const seen = new Map<string, NodeId>();
  const placeholder = Buffer.alloc(32);
  compute((level, index) => {
    seen.set(nodeKey(level, index), { level, index });
    return placeholder;
  });
  return [...seen.values()];
}
