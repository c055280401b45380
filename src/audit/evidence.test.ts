import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import {
  buildEvidenceBundle,
  openAuditLog,
  verifyEvidenceBundle,
  type AuditEvent,
  type EvidenceBundle,
  type WitnessingOptions,
} from './index.js';
import { cosignerFromSeed, formatCosignerKey } from './cosignature.js';
import { parseVerifierKey, type NoteVerifier } from './checkpoint.js';
import { openWitnessState, startWitnessServer } from '../witness/index.js';
import { testDatabase } from '../../test/support/database.js';
import * as tlog from '../../test/support/tlog.js';

const origin = 'gatehouse.test/audit';
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function logWith(count: number, witnessing?: WitnessingOptions) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-evidence-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openGatehouseStore(
    loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir }),
  );
  cleanups.push(() => store.close());
  const log = await openAuditLog({
    db: store.db,
    secrets: openLocalSecretStore(dir),
    origin,
    checkpointIntervalMs: 3_600_000,
    ...(witnessing && { witnessing }),
  });
  cleanups.push(() => log.close().catch(() => undefined));
  await Promise.all(Array.from({ length: count }, (_, i) => log.append(auditEvent(i))));
  return log;
}

function auditEvent(i: number): AuditEvent {
  return {
    timestamp: new Date(Date.UTC(2025, 2, 1, 2, 0, i)).toISOString(),
    actor_id: 'erin@example.com',
    actor_role: 'sales_rep',
    app_id: 'call-notes',
    action: 'crm.list',
    resource_type: 'contact',
    resource_id: '',
    scope: 'read:contact.basic',
    request_id: `req-${i}`,
    trace_id: `trace-${i}`,
    outcome: 'allow',
    reason: 'policy allow',
    fields: 'first_name,last_name',
    record_count: 50,
    client_network: '10.1.2.0/24',
  };
}

const clone = (bundle: EvidenceBundle) =>
  JSON.parse(JSON.stringify(bundle)) as {
    format: string;
    checkpoint: string;
    events: Array<{
      index: number;
      leaf_hash: string;
      event: Record<string, unknown>;
      inclusion_proof: string[];
    }>;
  };

describe('evidence bundles', () => {
  it('carries the chosen events with proofs against one signed checkpoint; the independent verifier agrees', async () => {
    const log = await logWith(37);
    const bundle = await buildEvidenceBundle(log, [30, 3, 4, 5, 3, 36], { subject: 'incident inc_test' });
    expect(bundle.events.map((e) => e.index)).toEqual([3, 4, 5, 30, 36]);
    expect(bundle.verifier_key).toBe(log.verifierKey());
    expect(verifyEvidenceBundle(JSON.parse(JSON.stringify(bundle)), log.verifierKey())).toEqual({
      ok: true,
      size: 37,
      events: 5,
      indexes: [3, 4, 5, 30, 36],
    });

    const checkpoint = tlog.openCheckpoint(bundle.checkpoint, log.verifierKey());
    expect(checkpoint).toMatchObject({ size: 37, signed: true });
    for (const entry of bundle.events) {
      const leaf = tlog.leafHash(Buffer.from(tlog.jcs(entry.event)));
      expect(leaf.toString('hex')).toBe(entry.leaf_hash);
      const proof = entry.inclusion_proof.map((h) => Buffer.from(h, 'hex'));
      expect(tlog.verifyInclusion(entry.index, 37, leaf, proof, checkpoint.root)).toBe(true);
    }
  });

  it('refuses an index the log does not hold', async () => {
    const log = await logWith(4);
    await expect(buildEvidenceBundle(log, [2, 9], { subject: 's', waitMs: 0 })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    await expect(buildEvidenceBundle(log, [-1], { subject: 's' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
  });

  describe('fails when tampered', () => {
    // An inclusion failure also says why, as a typed reason (merkle.ts checks length before hashing).
    const cases: Array<[string, (b: ReturnType<typeof clone>) => void, string, string?]> = [
      [
        'an event field changed (the app that read)',
        (b) => (b.events[1].event.app_id = 'other-app'),
        'LEAF_HASH_MISMATCH',
      ],
      ['a record count lowered', (b) => (b.events[0].event.record_count = 1), 'LEAF_HASH_MISMATCH'],
      [
        'an event and its leaf hash both changed',
        (b) => {
          b.events[0].event.actor_id = 'mallory@example.com';
          b.events[0].leaf_hash = tlog.leafHash(Buffer.from(tlog.jcs(b.events[0].event))).toString('hex');
        },
        'INCLUSION_PROOF_INVALID',
        'ROOT_MISMATCH',
      ],
      [
        'an event moved to another index',
        (b) => (b.events[0].index = 7),
        'INCLUSION_PROOF_INVALID',
        'ROOT_MISMATCH',
      ],
      [
        'a proof hash flipped',
        (b) => (b.events[2].inclusion_proof[0] = '00'.repeat(32)),
        'INCLUSION_PROOF_INVALID',
        'ROOT_MISMATCH',
      ],
      [
        'a proof hash dropped',
        (b) => b.events[2].inclusion_proof.pop(),
        'INCLUSION_PROOF_INVALID',
        'WRONG_PROOF_SIZE',
      ],
      ['an unknown field added to an event', (b) => (b.events[0].event.note = 'x'), 'EVENT_MALFORMED'],
      [
        'the checkpoint root replaced',
        (b) => (b.checkpoint = b.checkpoint.replace(/\n[A-Za-z0-9+/]{43}=\n/, `\n${'A'.repeat(43)}=\n`)),
        'CHECKPOINT_SIGNATURE_INVALID',
      ],
      [
        'the checkpoint size enlarged',
        (b) => (b.checkpoint = b.checkpoint.replace('\n12\n', '\n13\n')),
        'CHECKPOINT_SIGNATURE_INVALID',
      ],
      ['an event duplicated', (b) => b.events.push(b.events[0]), 'BUNDLE_MALFORMED'],
      ['the format changed', (b) => (b.format = 'something-else'), 'BUNDLE_MALFORMED'],
      ['a proof that is not hex', (b) => (b.events[0].inclusion_proof[0] = 'zz'), 'BUNDLE_MALFORMED'],
    ];
    it.each(cases)('%s', async (_name, tamper, code, reason) => {
      const log = await logWith(12);
      const bundle = clone(await buildEvidenceBundle(log, [1, 5, 9], { subject: 'incident inc_t' }));
      expect(verifyEvidenceBundle(bundle, log.verifierKey()).ok).toBe(true);
      tamper(bundle);
      expect(verifyEvidenceBundle(bundle, log.verifierKey())).toMatchObject({
        ok: false,
        code,
        ...(reason && { reason }),
      });
    });

    it('an event beyond the signed tree', async () => {
      const log = await logWith(12);
      const bundle = clone(await buildEvidenceBundle(log, [11], { subject: 's' }));
      bundle.events[0].index = 12;
      expect(verifyEvidenceBundle(bundle, log.verifierKey())).toMatchObject({
        ok: false,
        code: 'EVENT_BEYOND_CHECKPOINT',
        index: 12,
      });
    });

    it("a bundle signed by another log's key, carrying that key, against the trusted key", async () => {
      const mine = await logWith(5);
      const theirs = await logWith(5);
      const forged = await buildEvidenceBundle(theirs, [1], { subject: 's' });
      expect(forged.verifier_key).not.toBe(mine.verifierKey());
      expect(verifyEvidenceBundle(forged, mine.verifierKey())).toMatchObject({
        ok: false,
        code: 'CHECKPOINT_SIGNATURE_INVALID',
      });
    });

    it('not a bundle at all, or a verifier key that is not one', async () => {
      const log = await logWith(1);
      for (const junk of [null, 'text', [], {}, { format: 'gatehouse-evidence-bundle', version: 1 }]) {
        expect(verifyEvidenceBundle(junk, log.verifierKey())).toMatchObject({
          ok: false,
          code: 'BUNDLE_MALFORMED',
        });
      }
      expect(() => verifyEvidenceBundle({}, 'not a key')).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT' }),
      );
    });
  });
});

describe('evidence bundles of a witnessed log', () => {
  it('carry the cosigned checkpoint, verified offline with the witness quorum', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-witness-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cosigner = cosignerFromSeed('witness.test/w1', Buffer.alloc(32, 5));
    const vkey = formatCosignerKey(cosigner.name, cosigner.publicKey);
    const state = openWitnessState(join(dir, 'state.sqlite'));
    cleanups.push(() => state.close());
    // The log's key exists only once its log is opened: the witness learns it from a first log.
    const logs: NoteVerifier[] = [];
    const witness = await startWitnessServer({ cosigner, logs, state, host: '127.0.0.1', port: 0 });
    cleanups.push(() => witness.close());
    const log = await logWith(6, { witnesses: [{ name: cosigner.name, url: witness.url, vkey }] });
    logs.push(parseVerifierKey(log.verifierKey()));
    const bundle = await buildEvidenceBundle(log, [1, 4], { subject: 'incident inc_test' });
    expect(bundle.checkpoint).toMatch(/\n— witness\.test\/w1 \S+\n$/);
    const policy = { witnesses: [vkey], quorum: 1 };
    expect(verifyEvidenceBundle(bundle, log.verifierKey(), policy)).toMatchObject({ ok: true, events: 2 });
    // Without the cosignature (a checkpoint re-signed by whoever holds the log key): refused.
    const bare = { ...bundle, checkpoint: bundle.checkpoint.replace(/— witness\.test\/w1 \S+\n$/, '') };
    expect(verifyEvidenceBundle(bare, log.verifierKey())).toMatchObject({ ok: true });
    expect(verifyEvidenceBundle(bare, log.verifierKey(), policy)).toMatchObject({
      ok: false,
      code: 'CHECKPOINT_NOT_WITNESSED',
    });
  });
});
