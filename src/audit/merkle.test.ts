import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appendLeaf,
  checkConsistency,
  checkInclusion,
  consistencyProof,
  emptyRange,
  emptyRoot,
  hashChildren,
  hashLeaf,
  inclusionProof,
  nodesRead,
  rangeRoot,
  rootAt,
  verifyConsistency,
  verifyInclusion,
  type CompactRange,
  type GetNode,
} from './merkle.js';
import * as tlog from '../../test/support/tlog.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex');

// RFC 6962 test leaves, as in transparency-dev/merkle's testonly package.
const leafInputs = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(unhex);

// Roots of the first 1..8 of those leaves.
const roots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

// Inclusion proofs: [0-based leaf index, tree size, proof].
const inclusionVectors: Array<[number, number, string[]]> = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

// Consistency proofs: [size1, size2, proof].
const consistencyVectors: Array<[number, number, string[]]> = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

/** RFC 6962 MTH by its recursive definition, over leaf inputs: the reference the fast paths must match. */
function referenceRoot(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return emptyRoot;
  if (leaves.length === 1) return hashLeaf(leaves[0]);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return hashChildren(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

/** All perfect subtree hashes of a list of leaves, as a store would keep them. */
function nodesOf(leaves: readonly Uint8Array[]): GetNode {
  const levels: Buffer[][] = [leaves.map((l) => hashLeaf(l))];
  while (levels[levels.length - 1].length > 1) {
    const below = levels[levels.length - 1];
    const above: Buffer[] = [];
    for (let i = 0; i + 1 < below.length; i += 2) above.push(hashChildren(below[i], below[i + 1]));
    levels.push(above);
  }
  return (level, index) => {
    const hash = levels[level]?.[index];
    if (!hash) throw new Error(`node ${level}/${index} is not complete`);
    return hash;
  };
}

function rangeOf(leaves: readonly Uint8Array[]): CompactRange {
  return leaves.reduce<CompactRange>((range, leaf) => appendLeaf(range, hashLeaf(leaf)), emptyRange);
}

describe('RFC 6962 known answers (transparency-dev/merkle vectors)', () => {
  const get = nodesOf(leafInputs);

  it('hashes the empty tree as SHA-256 of the empty string', () => {
    expect(hex(emptyRoot)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(rangeRoot(emptyRange))).toBe(hex(emptyRoot));
  });

  it.each(roots.map((root, i) => [i + 1, root] as const))('root of the first %i leaves', (size, root) => {
    expect(hex(rootAt(size, get))).toBe(root);
    expect(hex(rangeRoot(rangeOf(leafInputs.slice(0, size))))).toBe(root);
    expect(hex(referenceRoot(leafInputs.slice(0, size)))).toBe(root);
  });

  it.each(inclusionVectors)('inclusion proof of leaf %i in a tree of %i', (index, size, expected) => {
    const proof = inclusionProof(index, size, get);
    expect(proof.map(hex)).toEqual(expected);
    const leaf = hashLeaf(leafInputs[index]);
    const root = unhex(roots[size - 1]);
    expect(verifyInclusion(index, size, leaf, proof, root)).toBe(true);
    expect(tlog.verifyInclusion(index, size, leaf, proof, root)).toBe(true);
  });

  it.each(consistencyVectors)('consistency proof from %i to %i', (m, n, expected) => {
    const proof = consistencyProof(m, n, get);
    expect(proof.map(hex)).toEqual(expected);
    const [oldRoot, newRoot] = [unhex(roots[m - 1]), unhex(roots[n - 1])];
    expect(verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
    expect(tlog.verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
  });

  it('every inclusion and consistency proof in the 8-leaf tree verifies, and fails against another root', () => {
    for (let n = 1; n <= 8; n++) {
      const root = unhex(roots[n - 1]);
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(i, n, get);
        expect(verifyInclusion(i, n, hashLeaf(leafInputs[i]), proof, root)).toBe(true);
        expect(verifyInclusion(i, n, hashLeaf(leafInputs[(i + 1) % 8]), proof, root)).toBe(false);
      }
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(m, n, get);
        expect(verifyConsistency(m, n, unhex(roots[m - 1]), root, proof)).toBe(true);
        if (m < n) expect(verifyConsistency(m, n, unhex(roots[n - 1]), root, proof)).toBe(false);
      }
    }
  });
});

describe('proofs read O(log n) stored nodes', () => {
  it('an inclusion or consistency proof in a tree of 10 million reads at most 2·log2(n) nodes', () => {
    const n = 10_000_000;
    const bound = 2 * Math.ceil(Math.log2(n));
    expect(nodesRead((get) => inclusionProof(1234567, n, get)).length).toBeLessThanOrEqual(bound);
    expect(nodesRead((get) => inclusionProof(n - 1, n, get)).length).toBeLessThanOrEqual(bound);
    expect(nodesRead((get) => consistencyProof(7654321, n, get)).length).toBeLessThanOrEqual(bound);
    expect(nodesRead((get) => rootAt(n, get)).length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
  });
});

describe('proof properties (fast-check), checked by our verifier and by the reference one in test/support/tlog.ts', () => {
  const leavesArb = fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 200 });

  it('compact range root = stored-node root = RFC 6962 definition', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const expected = referenceRoot(leaves);
        expect(hex(rangeRoot(rangeOf(leaves)))).toBe(hex(expected));
        expect(hex(rootAt(leaves.length, nodesOf(leaves)))).toBe(hex(expected));
      }),
    );
  });

  it('inclusion proofs verify for every leaf of every size, and not for a changed leaf or proof', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), (leaves, a, b) => {
        const size = 1 + (a % leaves.length);
        const index = b % size;
        const get = nodesOf(leaves);
        const root = referenceRoot(leaves.slice(0, size));
        const leaf = hashLeaf(leaves[index]);
        const proof = inclusionProof(index, size, get);
        expect(verifyInclusion(index, size, leaf, proof, root)).toBe(true);
        expect(tlog.verifyInclusion(index, size, leaf, proof, root)).toBe(true);
        const otherLeaf = hashLeaf(Buffer.concat([leaves[index], Buffer.from([1])]));
        expect(verifyInclusion(index, size, otherLeaf, proof, root)).toBe(false);
        expect(tlog.verifyInclusion(index, size, otherLeaf, proof, root)).toBe(false);
        if (proof.length > 0) {
          const bent = proof.map((p, i) =>
            i === b % proof.length ? Buffer.from(p.map((x, j) => (j ? x : x ^ 1))) : p,
          );
          expect(verifyInclusion(index, size, leaf, bent, root)).toBe(false);
          expect(tlog.verifyInclusion(index, size, leaf, bent, root)).toBe(false);
          expect(verifyInclusion(index, size, leaf, proof.slice(1), root)).toBe(false);
        }
        expect(verifyInclusion(size, size, leaf, proof, root)).toBe(false);
      }),
    );
  });

  it('consistency proofs verify between any two sizes, and not against a wrong old root', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), (leaves, a, b) => {
        const n = 1 + (a % leaves.length);
        const m = 1 + (b % n);
        const get = nodesOf(leaves);
        const oldRoot = referenceRoot(leaves.slice(0, m));
        const newRoot = referenceRoot(leaves.slice(0, n));
        const proof = consistencyProof(m, n, get);
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
        expect(tlog.verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
        if (m < n) {
          const wrong = hashLeaf(oldRoot);
          expect(verifyConsistency(m, n, wrong, newRoot, proof)).toBe(false);
          expect(tlog.verifyConsistency(m, n, wrong, newRoot, proof)).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, wrong, proof)).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1))).toBe(false);
        }
      }),
    );
  });

  it('appending reports each completed subtree exactly where a store would keep it', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const get = nodesOf(leaves);
        let range = emptyRange;
        for (const leaf of leaves) {
          range = appendLeaf(range, hashLeaf(leaf), (level, index, hash) => {
            expect(hex(hash)).toBe(hex(get(level, index)));
          });
        }
        expect(range.size).toBe(leaves.length);
      }),
    );
  });
});

describe('a proof that fails says why, before hashing (as transparency-dev/merkle)', () => {
  const leavesArb = fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 2, maxLength: 200 });
  const reasonOf = (check: ReturnType<typeof checkInclusion>) => (check.ok ? 'ok' : check.reason);

  it('inclusion: any proof of another length is WRONG_PROOF_SIZE; a hash of another size BAD_HASH_SIZE', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 3 }), (leaves, a, b, extra) => {
        const size = 1 + (a % leaves.length);
        const index = b % size;
        const root = referenceRoot(leaves.slice(0, size));
        const leaf = hashLeaf(leaves[index]);
        const proof = inclusionProof(index, size, nodesOf(leaves));
        expect(reasonOf(checkInclusion(index, size, leaf, proof, root))).toBe('ok');
        const longer = [...proof, ...Array.from({ length: extra }, () => root)];
        expect(reasonOf(checkInclusion(index, size, leaf, longer, root))).toBe('WRONG_PROOF_SIZE');
        if (proof.length > 0) {
          expect(reasonOf(checkInclusion(index, size, leaf, proof.slice(extra), root))).toBe(
            'WRONG_PROOF_SIZE',
          );
          const short = proof.map((p, i) => (i === b % proof.length ? p.subarray(1) : p));
          expect(reasonOf(checkInclusion(index, size, leaf, short, root))).toBe('BAD_HASH_SIZE');
        }
        expect(reasonOf(checkInclusion(index, size, leaf.subarray(0, 31), proof, root))).toBe(
          'BAD_HASH_SIZE',
        );
        expect(reasonOf(checkInclusion(index, size, leaf, proof, hashLeaf(root)))).toBe('ROOT_MISMATCH');
        expect(reasonOf(checkInclusion(size, size, leaf, proof, root))).toBe('INVALID_SIZES');
      }),
    );
  });

  it('consistency: the same checks, and ROOT_MISMATCH names which root', () => {
    fc.assert(
      fc.property(leavesArb, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 3 }), (leaves, a, b, extra) => {
        const n = 2 + (a % (leaves.length - 1));
        const m = 1 + (b % (n - 1));
        const oldRoot = referenceRoot(leaves.slice(0, m));
        const newRoot = referenceRoot(leaves.slice(0, n));
        const proof = consistencyProof(m, n, nodesOf(leaves));
        expect(reasonOf(checkConsistency(m, n, oldRoot, newRoot, proof))).toBe('ok');
        const longer = [...proof, ...Array.from({ length: extra }, () => newRoot)];
        expect(reasonOf(checkConsistency(m, n, oldRoot, newRoot, longer))).toBe('WRONG_PROOF_SIZE');
        expect(reasonOf(checkConsistency(m, n, oldRoot, newRoot, proof.slice(extra)))).toBe(
          'WRONG_PROOF_SIZE',
        );
        expect(reasonOf(checkConsistency(m, n, oldRoot, newRoot.subarray(1), proof))).toBe('BAD_HASH_SIZE');
        expect(checkConsistency(m, n, oldRoot, hashLeaf(newRoot), proof)).toMatchObject({
          reason: 'ROOT_MISMATCH',
          problem: `the proof leads to another root of ${n}`,
        });
        expect(reasonOf(checkConsistency(n, m, newRoot, oldRoot, proof))).toBe('INVALID_SIZES');
        expect(reasonOf(checkConsistency(m, m, oldRoot, oldRoot, [oldRoot]))).toBe('WRONG_PROOF_SIZE');
      }),
    );
  });
});

describe('caller mistakes are TypeErrors', () => {
  const get = nodesOf(leafInputs);
  it('rejects an index outside the tree and a shrinking consistency range', () => {
    expect(() => inclusionProof(3, 3, get)).toThrow(TypeError);
    expect(() => inclusionProof(-1, 3, get)).toThrow(TypeError);
    expect(() => consistencyProof(4, 3, get)).toThrow(TypeError);
    expect(consistencyProof(0, 3, get)).toEqual([]);
  });
});
