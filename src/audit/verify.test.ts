import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Db, Store } from '../store/index.js';
import { signCheckpoint, signerFromSeed } from './checkpoint.js';
import {
  exportLog,
  openAuditLog,
  rewriteEventBodies,
  verifyExportFile,
  verifyStoredLog,
  type AuditEvent,
  type VerifyReport,
} from './index.js';
import { tombstoneText } from './event.js';
import { appendLeaf, emptyRange, hashLeaf, rangeRoot, type CompactRange } from './merkle.js';
import { verifyAppended } from './verify-store.js';
import { testDatabase } from '../../test/support/database.js';

const origin = 'gatehouse.test/audit';
let dir = '';
let store: Store;
let db: Db;
let vkey = '';

function auditEvent(i: number): AuditEvent {
  return {
    timestamp: new Date(Date.UTC(2025, 2, 1, 12, 0, i)).toISOString(),
    actor_id: 'alice@example.com',
    actor_role: 'sales',
    app_id: 'call-notes',
    action: 'crm.read',
    resource_type: 'contact',
    resource_id: `c-${i}`,
    scope: 'read:contact.basic',
    request_id: `req-${i}`,
    trace_id: `trace-${i}`,
    outcome: 'allow',
    reason: `event ${i}`,
  };
}

/** A log of `count` events; with `dense`, a checkpoint is signed after every event. */
async function buildLog(count: number, dense = true): Promise<void> {
  const log = await openAuditLog({
    db,
    secrets: openLocalSecretStore(dir),
    origin,
    now: () => new Date('2025-03-01T12:00:00.000Z'),
    checkpointIntervalMs: 3_600_000,
  });
  for (let i = 0; i < count; i++) {
    await log.append(auditEvent(i));
    if (dense) await log.latestCheckpoint();
  }
  await log.close();
  vkey = log.verifierKey();
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-verify-'));
  store = await openGatehouseStore(
    loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir }),
  );
  db = store.db;
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// --- what an attacker with write access to the database does -----------------------------------------

async function editEvent(index: number, edit: (text: string) => string): Promise<void> {
  const row = await db
    .selectFrom('audit_events')
    .select('event')
    .where('idx', '=', index)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('audit_events')
    .set({ event: edit(row.event) })
    .where('idx', '=', index)
    .execute();
}

/** Renumbers the events 0..n-1 and recomputes every leaf hash and subtree hash from the event texts. */
async function rewriteHashes(): Promise<CompactRange> {
  const rows = await db.selectFrom('audit_events').selectAll().orderBy('idx').execute();
  await db.deleteFrom('audit_events').execute();
  await db.deleteFrom('audit_nodes').execute();
  let range = emptyRange;
  const nodes: Array<{ level: number; idx: number; hash: string }> = [];
  const events = rows.map((row, i) => {
    const leaf = hashLeaf(Buffer.from(row.event));
    range = appendLeaf(range, leaf, (level, idx, hash) => nodes.push({ level, idx, hash: hex(hash) }));
    return { ...row, idx: i, leaf_hash: hex(leaf) };
  });
  if (events.length) await db.insertInto('audit_events').values(events).execute();
  if (nodes.length) await db.insertInto('audit_nodes').values(nodes).execute();
  return range;
}

async function shiftUp(from: number): Promise<void> {
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('idx', '>=', from)
    .orderBy('idx', 'desc')
    .execute();
  for (const row of rows)
    await db
      .updateTable('audit_events')
      .set({ idx: row.idx + 1 })
      .where('idx', '=', row.idx)
      .execute();
}

async function verify(): Promise<VerifyReport> {
  return verifyStoredLog(db, vkey);
}

function failure(report: VerifyReport) {
  expect(report.ok).toBe(false);
  return report as Extract<VerifyReport, { ok: false }>;
}

describe('verifyStoredLog on an intact log', () => {
  it('is OK and checks every checkpoint, reporting progress', async () => {
    await buildLog(10);
    const progress: Array<[number, number]> = [];
    expect(await verifyStoredLog(db, vkey, (done, total) => progress.push([done, total]))).toEqual({
      ok: true,
      size: 10,
      checkpoints: 10,
    });
    expect(progress.at(-1)).toEqual([10, 10]);
  });

  it('is OK on an empty store', async () => {
    await buildLog(0);
    expect(await verify()).toEqual({ ok: true, size: 0, checkpoints: 1 });
  });

  it('rejects a malformed verifier key with INVALID_INPUT', async () => {
    await buildLog(1);
    await expect(verifyStoredLog(db, 'not a key')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe('each tamper is caught at its first bad index (a checkpoint after every event)', () => {
  beforeEach(() => buildLog(10));

  it('modified event: the text changed, hashes left alone', async () => {
    await editEvent(4, (t) => t.replace('"event 4"', '"event 4, edited"'));
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 4, code: 'LEAF_HASH_MISMATCH' });
  });

  it('modified event: the text changed and every hash recomputed to match', async () => {
    await editEvent(4, (t) => t.replace('"allow"', '"deny"'));
    await rewriteHashes();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 4, code: 'CHECKPOINT_ROOT_MISMATCH' });
  });

  it('modified event: the stored leaf hash changed, the event left alone', async () => {
    await db
      .updateTable('audit_events')
      .set({ leaf_hash: '00'.repeat(32) })
      .where('idx', '=', 6)
      .execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 6, code: 'LEAF_HASH_MISMATCH' });
  });

  it('modified event: same content re-serialized (not canonical), hashes recomputed', async () => {
    await editEvent(5, (t) => JSON.stringify(JSON.parse(t), null, 1));
    await rewriteHashes();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 5, code: 'EVENT_MALFORMED' });
  });

  it('deleted event: the row removed', async () => {
    await db.deleteFrom('audit_events').where('idx', '=', 3).execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 3, code: 'EVENT_MISSING' });
  });

  it('deleted event: the row removed, the rest renumbered and every hash recomputed', async () => {
    await db.deleteFrom('audit_events').where('idx', '=', 3).execute();
    await rewriteHashes();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 3, code: 'CHECKPOINT_ROOT_MISMATCH' });
  });

  it('swapped events: two texts exchanged', async () => {
    const [a, b] = await db
      .selectFrom('audit_events')
      .select(['idx', 'event'])
      .where('idx', 'in', [3, 4])
      .orderBy('idx')
      .execute();
    await db.updateTable('audit_events').set({ event: b.event }).where('idx', '=', 3).execute();
    await db.updateTable('audit_events').set({ event: a.event }).where('idx', '=', 4).execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 3, code: 'LEAF_HASH_MISMATCH' });
  });

  it('swapped events: whole rows exchanged with their leaf hashes', async () => {
    await db.updateTable('audit_events').set({ idx: -1 }).where('idx', '=', 3).execute();
    await db.updateTable('audit_events').set({ idx: 3 }).where('idx', '=', 4).execute();
    await db.updateTable('audit_events').set({ idx: 4 }).where('idx', '=', -1).execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 3, code: 'CHECKPOINT_ROOT_MISMATCH' });
  });

  it('inserted event: a forged event slipped in at 4, later events renumbered, every hash recomputed', async () => {
    await shiftUp(4);
    const forged = JSON.stringify(
      Object.fromEntries(
        Object.entries({ ...auditEvent(99), reason: 'forged' }).sort(([x], [y]) => (x < y ? -1 : 1)),
      ),
    );
    await db
      .insertInto('audit_events')
      .values({
        idx: 4,
        event: forged,
        leaf_hash: '',
        request_id: 'req-99',
        app_id: 'call-notes',
        created_at: 'x',
      })
      .execute();
    await rewriteHashes();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 4, code: 'CHECKPOINT_ROOT_MISMATCH' });
  });

  it('truncated tail: the last events deleted (the store is shorter than a signed checkpoint)', async () => {
    await db.deleteFrom('audit_events').where('idx', '>=', 7).execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 7, code: 'TRUNCATED' });
  });

  it('truncated tail: the last events and their subtree hashes deleted', async () => {
    await db.deleteFrom('audit_events').where('idx', '>=', 7).execute();
    await rewriteHashes();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 7, code: 'TRUNCATED' });
  });

  it('forged checkpoint signature: an event rewritten and its checkpoints re-signed with another key', async () => {
    await editEvent(2, (t) => t.replace('"allow"', '"deny"'));
    const mallory = signerFromSeed(origin, Buffer.alloc(32, 66));
    await db.deleteFrom('audit_checkpoints').where('size', '>=', 3).execute();
    let range = emptyRange;
    const rows = await db.selectFrom('audit_events').select('event').orderBy('idx').execute();
    await rewriteHashes();
    for (const [i, row] of rows.entries()) {
      range = appendLeaf(range, hashLeaf(Buffer.from(row.event)));
      if (range.size < 3) continue;
      const root = rangeRoot(range);
      const note = signCheckpoint({ origin, size: range.size, root }, mallory);
      await db
        .insertInto('audit_checkpoints')
        .values({ size: i + 1, root_hash: hex(root), note, created_at: 'x' })
        .execute();
    }
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 2, code: 'CHECKPOINT_SIGNATURE_INVALID' });
  });

  it('forged checkpoint signature: signature bytes altered on an intact log', async () => {
    const row = await db
      .selectFrom('audit_checkpoints')
      .select('note')
      .where('size', '=', 6)
      .executeTakeFirstOrThrow();
    const [body, sigLine] = row.note.split('\n\n');
    const [dash, name, sig] = sigLine.trim().split(' ');
    const raw = Buffer.from(sig, 'base64');
    raw[10] ^= 1;
    const note = `${body}\n\n${dash} ${name} ${raw.toString('base64')}\n`;
    await db.updateTable('audit_checkpoints').set({ note }).where('size', '=', 6).execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 5, code: 'CHECKPOINT_SIGNATURE_INVALID' });
  });

  it('checkpoint rolled back: a stored note moved to another size', async () => {
    const row = await db
      .selectFrom('audit_checkpoints')
      .select('note')
      .where('size', '=', 3)
      .executeTakeFirstOrThrow();
    await db.updateTable('audit_checkpoints').set({ note: row.note }).where('size', '=', 8).execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 7, code: 'CHECKPOINT_MALFORMED' });
  });

  it('subtree hash rewritten (to forge proofs) while events stay intact', async () => {
    await db
      .updateTable('audit_nodes')
      .set({ hash: 'cd'.repeat(32) })
      .where('level', '=', 1)
      .where('idx', '=', 3)
      .execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 6, code: 'NODE_MISMATCH' });
  });
});

describe('with sparse checkpoints the change is placed between the last good checkpoint and the bad one', () => {
  beforeEach(() => buildLog(10, false));

  it('a consistent rewrite is narrowed by the stored subtree hashes the attacker left', async () => {
    await editEvent(6, (t) => t.replace('"allow"', '"deny"'));
    const leaf = hashLeaf(
      Buffer.from(
        (await db.selectFrom('audit_events').select('event').where('idx', '=', 6).executeTakeFirstOrThrow())
          .event,
      ),
    );
    await db
      .updateTable('audit_events')
      .set({ leaf_hash: hex(leaf) })
      .where('idx', '=', 6)
      .execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 6, code: 'CHECKPOINT_ROOT_MISMATCH' });
  });

  it('a full rewrite is reported from the first event no valid checkpoint vouches for', async () => {
    await editEvent(6, (t) => t.replace('"allow"', '"deny"'));
    await rewriteHashes();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 0, code: 'CHECKPOINT_ROOT_MISMATCH' });
  });
});

describe('export and offline verification', () => {
  const exportFile = () => join(dir, 'audit.jsonl');

  it('writes events, leaf hashes and checkpoints as JSON lines and verifies offline with only the key', async () => {
    await buildLog(10);
    const progress: number[] = [];
    expect(await exportLog(db, exportFile(), (done) => progress.push(done))).toEqual({
      events: 10,
      checkpoints: 10,
    });
    expect(progress.at(-1)).toBe(10);
    const lines = readFileSync(exportFile(), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      type: 'header',
      format: 'gatehouse-audit-export',
      version: 1,
      events: 10,
    });
    expect(lines[1]).toMatchObject({ type: 'event', index: 0, event: auditEvent(0) });
    expect(lines[2]).toMatchObject({ type: 'checkpoint', size: 1 });
    expect(lines.at(-1)).toEqual({ type: 'end', events: 10, checkpoints: 10 });
    const row = await db
      .selectFrom('audit_events')
      .select('leaf_hash')
      .where('idx', '=', 0)
      .executeTakeFirstOrThrow();
    expect(lines[1].leaf_hash).toBe(row.leaf_hash);

    await store.close();
    // No such files on PostgreSQL: the store is closed all the same.
    for (const file of ['gatehouse.db', 'audit.db']) rmSync(join(dir, file), { force: true });
    const offline: number[] = [];
    expect(await verifyExportFile(exportFile(), vkey, (done) => offline.push(done))).toEqual({
      ok: true,
      size: 10,
      checkpoints: 10,
    });
    expect(offline.at(-1)).toBe(10);
    store = await openGatehouseStore(
      loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir }),
    );
  });

  it('an export of a tampered store fails offline at the same index as verifyStoredLog', async () => {
    await buildLog(10);
    await editEvent(4, (t) => t.replace('"allow"', '"deny"'));
    await rewriteHashes();
    await db.deleteFrom('audit_events').where('idx', '>=', 8).execute();
    await exportLog(db, exportFile());
    const offline = failure(await verifyExportFile(exportFile(), vkey));
    expect(offline).toMatchObject({ firstBadIndex: 4, code: 'CHECKPOINT_ROOT_MISMATCH' });
    expect(await verify()).toEqual(offline);
  });

  it('a truncated store exports a truncated log', async () => {
    await buildLog(10);
    await db.deleteFrom('audit_events').where('idx', '>=', 7).execute();
    await exportLog(db, exportFile());
    expect(failure(await verifyExportFile(exportFile(), vkey))).toMatchObject({
      firstBadIndex: 7,
      code: 'TRUNCATED',
    });
  });

  describe('a tampered export file', () => {
    beforeEach(async () => {
      await buildLog(10);
      await exportLog(db, exportFile());
    });
    const lines = () => readFileSync(exportFile(), 'utf8').split('\n').filter(Boolean);
    const write = (ls: string[]) => writeFileSync(exportFile(), `${ls.join('\n')}\n`);
    const eventLine = (ls: string[], index: number) =>
      ls.findIndex((l) => l.startsWith(`{"type":"event","index":${index},`));

    it('modified event line', async () => {
      const ls = lines();
      const at = eventLine(ls, 5);
      ls[at] = ls[at].replace('"event 5"', '"event five"');
      write(ls);
      expect(failure(await verifyExportFile(exportFile(), vkey))).toMatchObject({
        firstBadIndex: 5,
        code: 'LEAF_HASH_MISMATCH',
      });
    });

    it('deleted event line', async () => {
      const ls = lines();
      ls.splice(eventLine(ls, 5), 1);
      write(ls);
      expect(failure(await verifyExportFile(exportFile(), vkey))).toMatchObject({
        firstBadIndex: 5,
        code: 'EVENT_MISSING',
      });
    });

    it('swapped event lines', async () => {
      const ls = lines();
      const [a, b] = [eventLine(ls, 2), eventLine(ls, 3)];
      [ls[a], ls[b]] = [ls[b], ls[a]];
      write(ls);
      expect(failure(await verifyExportFile(exportFile(), vkey))).toMatchObject({ firstBadIndex: 2 });
    });

    it('cut short (no end line)', async () => {
      const ls = lines();
      write(ls.slice(0, eventLine(ls, 6)));
      expect(failure(await verifyExportFile(exportFile(), vkey))).toMatchObject({
        firstBadIndex: 6,
        code: 'EXPORT_INCOMPLETE',
      });
    });

    it('a line that is not JSON', async () => {
      const ls = lines();
      ls.splice(eventLine(ls, 3), 0, '{"type":');
      write(ls);
      expect(failure(await verifyExportFile(exportFile(), vkey))).toMatchObject({
        firstBadIndex: 3,
        code: 'EXPORT_MALFORMED',
      });
    });

    it('verified with another key', async () => {
      const other = `${origin}+${'0'.repeat(8)}+${Buffer.alloc(33, 1).toString('base64')}`;
      await expect(verifyExportFile(exportFile(), other)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      const mallory = signerFromSeed(origin, Buffer.alloc(32, 5));
      const { formatVerifierKey } = await import('./checkpoint.js');
      const report = failure(
        await verifyExportFile(exportFile(), formatVerifierKey(origin, mallory.publicKey)),
      );
      expect(report).toMatchObject({ firstBadIndex: 0, code: 'CHECKPOINT_SIGNATURE_INVALID' });
    });
  });

  it('a missing export file is INVALID_INPUT', async () => {
    await buildLog(1);
    await expect(verifyExportFile(join(dir, 'nope.jsonl'), vkey)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
  });
});

describe('verifyAppended: the background check, incremental', () => {
  it('reads only what was appended since the last verified checkpoint and goes on from the new one', async () => {
    await buildLog(10);
    const first = await verifyAppended(db, vkey);
    expect(first.report).toEqual({ ok: true, size: 10, checkpoints: 10 });
    expect(first.verified?.range.size).toBe(10);
    await buildLog(6);
    const next = await verifyAppended(db, vkey, first.verified);
    expect(next.report).toMatchObject({ ok: true, size: 16 });
    // Checkpoint 10 (where it starts) and the six new ones, not the ten before it.
    expect(next.report).toMatchObject({ checkpoints: 7 });
    expect(next.verified?.range.size).toBe(16);
    expect(await verifyAppended(db, vkey, next.verified)).toMatchObject({ report: { ok: true, size: 16 } });
  });

  it('finds an appended event that was altered, at its index', async () => {
    await buildLog(10);
    const { verified } = await verifyAppended(db, vkey);
    await buildLog(6);
    await editEvent(12, (text) => text.replace('event 2', 'event X'));
    const { report } = await verifyAppended(db, vkey, verified);
    expect(failure(report).firstBadIndex).toBe(12);
  });

  it('finds an older subtree hash altered after it was verified: the consistency proof to the new checkpoint fails', async () => {
    await buildLog(10);
    const { verified } = await verifyAppended(db, vkey);
    await buildLog(6);
    // Node [0, 8): part of the proof that the tree of 10 is a prefix of the tree of 16.
    await db
      .updateTable('audit_nodes')
      .set({ hash: '00'.repeat(32) })
      .where('level', '=', 3)
      .where('idx', '=', 0)
      .execute();
    const { report } = await verifyAppended(db, vkey, verified);
    expect(failure(report)).toMatchObject({ code: 'NODE_MISMATCH', firstBadIndex: 10 });
  });
});

describe('tombstones: bodies rewritten on purpose keep the log verifying, forged ones do not', () => {
  beforeEach(() => buildLog(8));

  const tombstone = (index: number) => ({
    event: { ...auditEvent(index), resource_id: 'subj_0123' },
    tombstone: { state: 'pseudonymised' as const, run: 'dsr_test', at: '2025-03-02T00:00:00.000Z' },
  });

  it('a pseudonymised body with its leaf hash kept verifies, on the store and offline', async () => {
    const row = await db
      .selectFrom('audit_events')
      .select('leaf_hash')
      .where('idx', '=', 3)
      .executeTakeFirstOrThrow();
    expect(await rewriteEventBodies(db, [{ index: 3, leafHash: row.leaf_hash, body: tombstone(3) }])).toEqual(
      [3],
    );
    expect(await verify()).toMatchObject({ ok: true, size: 8 });
    const file = join(dir, 'export.jsonl');
    await exportLog(db, file);
    expect(await verifyExportFile(file, vkey)).toMatchObject({ ok: true, size: 8 });
  });

  it('forged tombstone: an event hidden behind a tombstone with a made-up leaf hash', async () => {
    await db
      .updateTable('audit_events')
      .set({ event: tombstoneText(tombstone(3)), leaf_hash: 'ab'.repeat(32) })
      .where('idx', '=', 3)
      .execute();
    expect(failure(await verify())).toMatchObject({ firstBadIndex: 3 });
  });

  it('a rewrite that names a leaf hash the row no longer has changes nothing', async () => {
    expect(
      await rewriteEventBodies(db, [{ index: 3, leafHash: '00'.repeat(32), body: tombstone(3) }]),
    ).toEqual([]);
    expect(await verify()).toMatchObject({ ok: true });
  });
});
