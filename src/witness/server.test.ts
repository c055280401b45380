import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatVerifierKey, signCheckpoint, signerFromSeed } from '../audit/checkpoint.js';
import {
  cosignerFromSeed,
  formatCosignerKey,
  parseCosignerKey,
  validCosignatures,
} from '../audit/cosignature.js';
import {
  consistencyProof,
  hashLeaf,
  rangeRoot,
  appendLeaf,
  emptyRange,
  type CompactRange,
} from '../audit/merkle.js';
import { parseVerifierKey } from '../audit/index.js';
import { openWitnessState, type WitnessState } from './state.js';
import { addCheckpoint } from './server.js';

const origin = 'gatehouse.test/audit';
const log = signerFromSeed(origin, Buffer.alloc(32, 1));
const logKey = parseVerifierKey(formatVerifierKey(origin, log.publicKey));
const witness = cosignerFromSeed('witness.test/w1', Buffer.alloc(32, 2));
const witnessKey = parseCosignerKey(formatCosignerKey(witness.name, witness.publicKey));

/** A log of `n` leaves `prefix-i`: its checkpoint and a proof source from its leaves. */
function tree(n: number, prefix = 'event') {
  const leaves = Array.from({ length: n }, (_, i) => hashLeaf(Buffer.from(`${prefix}-${i}`)));
  let range: CompactRange = emptyRange;
  for (const leaf of leaves) range = appendLeaf(range, leaf);
  const note = signCheckpoint({ origin, size: n, root: rangeRoot(range), timestamp: 1_800_000_000 }, log);
  return { leaves, note };
}

let dir: string;
let state: WitnessState;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'witness-'));
  state = openWitnessState(join(dir, 'state.sqlite'));
});
afterEach(() => {
  state.close();
  rmSync(dir, { recursive: true, force: true });
});

const submit = (old: number, proof: Buffer[], note: string) =>
  addCheckpoint(
    `old ${old}\n${proof.map((h) => `${h.toString('base64')}\n`).join('')}\n${note}`,
    [logKey],
    state,
    witness,
    1_800_000_100,
  ).answer;

describe('the witness (C2SP tlog-witness add-checkpoint)', () => {
  it('cosigns a first checkpoint with a timestamped cosignature/v1 and then only consistent ones', () => {
    const first = tree(5);
    const answer = submit(0, [], first.note);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatch(/^— witness\.test\/w1 [A-Za-z0-9+/]+=*\n$/);
    expect(validCosignatures(first.note + answer.body, [witnessKey])).toEqual([
      { witness: 'witness.test/w1', time: 1_800_000_100 },
    ]);
    const later = tree(9);
    const proof = consistencyProof(5, 9, (level, index) => nodeOf(later.leaves, level, index));
    expect(submit(5, proof, later.note).status).toBe(200);
  });

  it('answers 409 with the latest cosigned size when the old size is not it', () => {
    submit(0, [], tree(5).note);
    const answer = submit(0, [], tree(9).note);
    expect(answer).toMatchObject({ status: 409, contentType: 'text/x.tlog.size', body: '5\n' });
  });

  it('refuses a rewritten history with 422: the proof does not lead from the root it cosigned', () => {
    submit(0, [], tree(8).note);
    const forged = tree(12, 'rewritten');
    const proof = consistencyProof(8, 12, (level, index) => nodeOf(forged.leaves, level, index));
    expect(submit(8, proof, forged.note).status).toBe(422);
    // Nothing changed: the honest continuation is still accepted from 8.
    const honest = tree(12);
    expect(
      submit(
        8,
        consistencyProof(8, 12, (l, i) => nodeOf(honest.leaves, l, i)),
        honest.note,
      ).status,
    ).toBe(200);
  });

  it('answers 404 for an unknown log origin and 403 when no trusted key signed the checkpoint', () => {
    const stranger = signerFromSeed('other.test/log', Buffer.alloc(32, 3));
    const root = Buffer.alloc(32, 9);
    expect(submit(0, [], signCheckpoint({ origin: 'other.test/log', size: 1, root }, stranger)).status).toBe(
      404,
    );
    const impostor = signerFromSeed(origin, Buffer.alloc(32, 4));
    expect(submit(0, [], signCheckpoint({ origin, size: 1, root }, impostor)).status).toBe(403);
    expect(submit(0, [], 'not a note').status).toBe(400);
  });
});

/** The hash of the complete subtree (level, index) over `leaves`. */
function nodeOf(leaves: Buffer[], level: number, index: number): Buffer {
  let range: CompactRange = emptyRange;
  for (const leaf of leaves.slice(index * 2 ** level, (index + 1) * 2 ** level))
    range = appendLeaf(range, leaf);
  return rangeRoot(range);
}
