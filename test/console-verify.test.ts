import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  importVerifierKey,
  leafHash,
  openCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '../console/src/verify.js';
import { canonicalJson, leafHashHex } from '../src/audit/index.js';
import { formatVerifierKey, signCheckpoint, signerFromSeed } from '../src/audit/checkpoint.js';
import {
  consistencyProof,
  hashChildren,
  hashLeaf,
  inclusionProof,
  rootAt,
  type GetNode,
} from '../src/audit/merkle.js';

// The console's in-browser verifier (WebCrypto) against the server's own log code: what the server
// proves, the browser accepts; one changed byte anywhere, and it refuses.
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const flip = (text: string) => text.replace(/^./, (c) => (c === '0' ? '1' : '0'));

function nodesOf(leaves: readonly Uint8Array[]): GetNode {
  const levels: Buffer[][] = [leaves.map((leaf) => hashLeaf(leaf))];
  while (levels.at(-1)!.length > 1) {
    const below = levels.at(-1)!;
    const above: Buffer[] = [];
    for (let i = 0; i + 1 < below.length; i += 2) above.push(hashChildren(below[i]!, below[i + 1]!));
    levels.push(above);
  }
  return (level, index) => levels[level]![index]!;
}

const leavesArb = fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 64 });
const signer = signerFromSeed('gatehouse/audit', new Uint8Array(32).fill(7));
const verifierKey = formatVerifierKey(signer.name, signer.publicKey);

describe('the console verifier (WebCrypto) against the server log', () => {
  it('accepts every inclusion proof the server makes, and refuses a bent proof, another leaf or index', async () => {
    await fc.assert(
      fc.asyncProperty(leavesArb, fc.nat(), fc.nat(), async (leaves, a, b) => {
        const size = 1 + (a % leaves.length);
        const index = b % size;
        const get = nodesOf(leaves);
        const root = rootAt(size, get);
        const leaf = hashLeaf(leaves[index]!);
        const proof = inclusionProof(index, size, get).map(hex);
        expect((await verifyInclusion(index, size, leaf, proof, root)).ok).toBe(true);
        expect((await verifyInclusion(index, size, hashLeaf(Buffer.from('other')), proof, root)).ok).toBe(
          false,
        );
        if (proof.length > 0) {
          const bent = proof.map((p, i) => (i === b % proof.length ? flip(p) : p));
          expect((await verifyInclusion(index, size, leaf, bent, root)).ok).toBe(false);
          expect((await verifyInclusion(index, size, leaf, proof.slice(1), root)).ok).toBe(false);
          expect((await verifyInclusion(index, size, leaf, [...proof, proof[0]], root)).ok).toBe(false);
        }
        expect((await verifyInclusion(size, size, leaf, proof, root)).ok).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('accepts every consistency proof the server makes, and refuses a bent one or a rewritten history', async () => {
    await fc.assert(
      fc.asyncProperty(leavesArb, fc.nat(), fc.nat(), async (leaves, a, b) => {
        const newer = 1 + (a % leaves.length);
        const older = 1 + (b % newer);
        const get = nodesOf(leaves);
        const checkpoint = (size: number) => ({ origin: 'gatehouse/audit', size, root: rootAt(size, get) });
        const proof = consistencyProof(older, newer, get).map(hex);
        expect((await verifyConsistency(checkpoint(older), checkpoint(newer), proof)).ok).toBe(true);
        if (proof.length > 0) {
          const bent = proof.map((p, i) => (i === a % proof.length ? flip(p) : p));
          expect((await verifyConsistency(checkpoint(older), checkpoint(newer), bent)).ok).toBe(false);
        }
        // The same older size with another history behind it: the newer tree does not extend it.
        const rewritten = { ...checkpoint(older), root: hashLeaf(Buffer.from('rewritten')) };
        expect((await verifyConsistency(rewritten, checkpoint(newer), proof)).ok).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('opens a checkpoint the server signed with its published key, and refuses it altered or under another key', async () => {
    const key = await importVerifierKey(verifierKey);
    if (!key.ok) throw new Error(key.reason);
    const root = hashLeaf(Buffer.from('root'));
    const note = signCheckpoint({ origin: 'gatehouse/audit', size: 42, root }, signer);
    const opened = await openCheckpoint(note, key.value);
    expect(opened).toMatchObject({ ok: true, value: { origin: 'gatehouse/audit', size: 42 } });
    expect(hex(opened.ok ? opened.value.root : new Uint8Array())).toBe(hex(root));
    expect(await openCheckpoint(note.replace('\n42\n', '\n43\n'), key.value)).toMatchObject({ ok: false });
    const other = signerFromSeed('gatehouse/audit', new Uint8Array(32).fill(9));
    const forged = signCheckpoint({ origin: 'gatehouse/audit', size: 42, root }, other);
    expect(await openCheckpoint(forged, key.value)).toMatchObject({
      ok: false,
      reason: 'no signature by this key',
    });
    expect(await importVerifierKey(verifierKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).toMatchObject({
      ok: false,
    });
    // As the server publishes them: with the log's timestamp as an extension line after the root.
    const stamped = signCheckpoint(
      { origin: 'gatehouse/audit', size: 42, root, timestamp: 1_765_000_000 },
      signer,
    );
    expect(stamped).toContain('\ntimestamp 1765000000\n');
    expect(await openCheckpoint(stamped, key.value)).toMatchObject({ ok: true, value: { size: 42 } });
    expect(
      await openCheckpoint(stamped.replace('timestamp 1765000000', 'timestamp 1765000001'), key.value),
    ).toMatchObject({ ok: false });
  });

  it("hashes an event to the server's leaf hash (RFC 8785 canonical JSON)", async () => {
    const event = {
      timestamp: '2026-12-06T08:00:00.000Z',
      actor_id: 'carol@example.com',
      actor_role: 'auditor',
      app_id: 'console',
      action: 'audit.events',
      resource_type: 'audit_event',
      resource_id: '',
      scope: 'audit:read',
      request_id: 'r-1',
      trace_id: '',
      outcome: 'allow' as const,
      reason: 'ünïcode € and "quotes"',
    };
    expect(hex(await leafHash(event))).toBe(leafHashHex(canonicalJson(event)));
    expect(hex(await leafHash({ ...event, actor_id: 'mallory@example.com' }))).not.toBe(
      leafHashHex(canonicalJson(event)),
    );
  });
});
