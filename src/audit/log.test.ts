import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';
import { sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { gatehouseMigrations, openGatehouseStore } from '../database/index.js';
import { openStore, type Store } from '../store/index.js';
import { auditVerifierKey, canonicalJson, openAuditLog, verifyStoredLog, type AuditEvent } from './index.js';
import { onPostgres, testDatabase } from '../../test/support/database.js';
import * as tlog from '../../test/support/tlog.js';
import { AuditWriter } from './writer.js';

const origin = 'gatehouse.test/audit';
const frozen = () => new Date('2025-03-01T12:00:00.000Z');
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempStore(
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-')),
): Promise<{ dir: string; store: Store }> {
  const store = await openGatehouseStore(
    loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir }),
  );
  cleanups.push(() => store.close());
  if (!cleanups.some((c) => (c as { dir?: string }).dir === dir)) {
    cleanups.unshift(Object.assign(() => rmSync(dir, { recursive: true, force: true }), { dir }));
  }
  return { dir, store };
}

async function openLog(store: Store, dir: string, extra: Partial<Parameters<typeof openAuditLog>[0]> = {}) {
  const log = await openAuditLog({
    db: store.db,
    secrets: openLocalSecretStore(dir),
    origin,
    now: frozen,
    checkpointIntervalMs: 3_600_000,
    ...extra,
  });
  cleanups.push(() => log.close().catch(() => undefined));
  return log;
}

function auditEvent(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    timestamp: new Date(Date.UTC(2025, 2, 1, 12, 0, 0, i)).toISOString(),
    actor_id: `user${i % 3}@example.com`,
    actor_role: 'sales',
    app_id: i % 2 ? 'call-notes' : 'pipeline-dashboard',
    action: 'crm.read',
    resource_type: 'contact',
    resource_id: `c-${i}`,
    scope: 'read:contact.basic',
    request_id: `req-${i}`,
    trace_id: `trace-${i}`,
    outcome: i % 5 === 0 ? 'deny' : 'allow',
    reason: `event ${i}`,
    ...overrides,
  };
}

const unhex = (s: string) => Buffer.from(s, 'hex');

/** Counts queries and rows through a Kysely plugin: reads are asserted by count, never by time. */
function counting() {
  const stats = { queries: 0, rows: 0, eventInserts: 0 };
  const plugin: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      stats.queries += 1;
      const node = args.node;
      if (node.kind === 'InsertQueryNode' && node.into?.table.identifier.name === 'audit_events')
        stats.eventInserts += 1;
      return node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      stats.rows += args.result.rows.length;
      return args.result;
    },
  };
  return { stats, plugin, reset: () => Object.assign(stats, { queries: 0, rows: 0, eventInserts: 0 }) };
}

describe('append', () => {
  it('stores each event as JCS with leaf hash SHA-256(0x00 ‖ JCS), durably, at consecutive indexes', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    const first = await log.append(auditEvent(0));
    const second = await log.append(auditEvent(1));
    expect(first).toEqual({
      index: 0,
      leafHash: tlog.leafHash(Buffer.from(tlog.jcs(auditEvent(0)))).toString('hex'),
    });
    expect(second.index).toBe(1);

    // A second connection to the file sees them: committed when append resolved.
    const other = await tempStore(dir);
    const rows = await other.store.db.selectFrom('audit_events').selectAll().orderBy('idx').execute();
    expect(rows.map((r) => [r.idx, r.event, r.leaf_hash, r.request_id])).toEqual([
      [0, tlog.jcs(auditEvent(0)), first.leafHash, 'req-0'],
      [1, tlog.jcs(auditEvent(1)), second.leafHash, 'req-1'],
    ]);
  });

  it('group-commits concurrent appends: 500 in one tick take one insert, not 500', async () => {
    const { dir, store } = await tempStore();
    const counter = counting();
    const log = await openLog({ ...store, db: store.db.withPlugin(counter.plugin) }, dir);
    // On SQLite the writer thread inserts on its own connection: count the batches handed to it.
    const batches = vi.spyOn(AuditWriter.prototype, 'write');
    cleanups.push(() => batches.mockRestore());
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(auditEvent(i))));
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(counter.stats.eventInserts).toBeLessThanOrEqual(2);
    if (!onPostgres) expect(batches).toHaveBeenCalledTimes(1);
    expect(await verifyStoredLog(store.db, log.verifierKey())).toMatchObject({ ok: true, size: 500 });
  });

  it('appends arriving while a transaction runs go into the next one, in order', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    const first = log.append(auditEvent(0));
    await Promise.resolve();
    const later = Array.from({ length: 20 }, (_, i) => log.append(auditEvent(i + 1)));
    expect((await Promise.all([first, ...later])).map((r) => r.index)).toEqual(
      Array.from({ length: 21 }, (_, i) => i),
    );
  });

  it('a malformed event is a TypeError; a closed log is AUDIT_UNAVAILABLE', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    await expect(
      log.append({ ...auditEvent(0), outcome: 'perhaps' } as unknown as AuditEvent),
    ).rejects.toThrow(TypeError);
    await log.close();
    await expect(log.append(auditEvent(1))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('fails closed with AUDIT_UNAVAILABLE when the store cannot be written', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    await log.append(auditEvent(0));
    if (onPostgres) {
      await store.close();
    } else {
      // The writer thread has a connection of its own: the file itself refuses, as a full disk would.
      const other = new SQLite(join(dir, 'audit.db'));
      other.exec(
        `create trigger refuse before insert on audit_events begin select raise(abort, 'disk full'); end`,
      );
      other.close();
    }
    await expect(log.append(auditEvent(1))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(log.lastAppendFailure()).toMatch(/cannot be written/);
  });

  it.skipIf(onPostgres)(
    'reads its own writes: an acknowledged event is in the next query and proof on the main connection',
    async () => {
      const { dir, store } = await tempStore();
      const log = await openLog(store, dir);
      for (let i = 0; i < 5; i++) {
        const { index, leafHash } = await log.append(auditEvent(i));
        const page = await log.events({ request_id: `req-${i}` });
        expect(page.records).toMatchObject([{ index, leaf_hash: leafHash }]);
        await expect(log.inclusionProof(index, index + 1)).resolves.toBeInstanceOf(Array);
      }
    },
  );
});

describe('two writers on one SQLite file', () => {
  it('two AuditLog instances on two connections append concurrently into one consistent log', async () => {
    const { dir, store } = await tempStore();
    const other = await tempStore(dir);
    const a = await openLog(store, dir);
    const b = await openLog(other.store, dir);
    expect(a.verifierKey()).toBe(b.verifierKey());

    const checkpoints: string[] = [];
    const appends: Array<Promise<{ index: number }>> = [];
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 20; i++) {
        appends.push(a.append(auditEvent(round * 100 + i)));
        appends.push(b.append(auditEvent(round * 100 + 50 + i)));
      }
      checkpoints.push(await (round % 2 ? a : b).latestCheckpoint());
    }
    const indexes = (await Promise.all(appends)).map((r) => r.index).sort((x, y) => x - y);
    expect(indexes).toEqual(Array.from({ length: 400 }, (_, i) => i));
    checkpoints.push(await a.latestCheckpoint());

    expect(await verifyStoredLog(store.db, a.verifierKey())).toMatchObject({ ok: true, size: 400 });
    // Every checkpoint, whichever writer signed it, is consistent with the last.
    const last = tlog.openCheckpoint(checkpoints[checkpoints.length - 1], a.verifierKey());
    expect(last).toMatchObject({ size: 400, signed: true });
    const sizes = checkpoints.map((note) => tlog.openCheckpoint(note, a.verifierKey()).size);
    expect(sizes).toEqual([...sizes].sort((x, y) => x - y));
    for (const note of checkpoints) {
      const cp = tlog.openCheckpoint(note, a.verifierKey());
      expect(cp.signed).toBe(true);
      if (cp.size === 0) continue; // the empty tree is a prefix of every tree; RFC 9162 has no proof for it
      const proof = (await b.consistencyProof(cp.size, 400)).map(unhex);
      expect(tlog.verifyConsistency(cp.size, 400, cp.root, last.root, proof)).toBe(true);
    }
  });
});

describe.skipIf(onPostgres)('another process holding the SQLite write lock', () => {
  it('refuses an append within the bound from when it was asked, even queued behind a waiting checkpoint', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    await log.append(auditEvent(0));
    const holder = new SQLite(join(dir, 'audit.db'));
    holder.exec('BEGIN IMMEDIATE');
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        holder.exec('COMMIT');
        holder.close();
        resolve();
      }, 6_500),
    );
    // The checkpoint takes the writer first and waits its own bound; the append queues behind it. Its
    // wait counts from when it was asked, so it is refused before the lock goes, not served after it.
    const signing = log.latestCheckpoint();
    const appending = log.append(auditEvent(1));
    // Both awaited at once: either may be refused first (the writer thread refuses as soon as it gives up).
    await Promise.all([
      expect(signing).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' }),
      expect(appending).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' }),
    ]);
    await released;
    await expect(log.append(auditEvent(2))).resolves.toMatchObject({ index: 1 });
  });
});

describe.runIf(onPostgres)('the sequencer on PostgreSQL', () => {
  it('signs its first checkpoint an interval after taking the lead, not at its first tick', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    await log.append(auditEvent(0));
    // Several ticks (every 250 ms) go by with the event integrated; the interval (an hour) has not.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    // A checkpoint signed at once would be served uncosigned while its witnesses still answer.
    expect(await store.db.selectFrom('audit_checkpoints').select('size').execute()).toEqual([]);
    expect(tlog.openCheckpoint(await log.latestCheckpoint(), log.verifierKey())).toMatchObject({ size: 1 });
  });
});

describe.runIf(onPostgres)('a client (the CLI) on PostgreSQL never takes the sequencer role', () => {
  it('with no node sequencing, its appends are integrated and signed, and a node opened next leads at once', async () => {
    const { dir, store } = await tempStore();
    const changes: boolean[] = [];
    const client = await openLog(store, dir, { role: 'client', onSequencerChange: (l) => changes.push(l) });
    expect(client.sequencing()).toBe(false);
    const appended = await Promise.all([0, 1, 2].map((i) => client.append(auditEvent(i))));
    expect(appended.map((a) => a.index)).toEqual([0, 1, 2]);
    expect(client.sequencing()).toBe(false);
    expect(changes).toEqual([]);
    const cp = tlog.openCheckpoint(await client.latestCheckpoint(), client.verifierKey());
    expect(cp.size).toBe(3);
    const node = await openLog((await tempStore(dir)).store, dir);
    expect(node.sequencing()).toBe(true);
    await client.close();
    expect(await verifyStoredLog(store.db, node.verifierKey())).toMatchObject({ ok: true, size: 3 });
  });

  it("with a node sequencing, the node integrates the client's events and keeps the role", async () => {
    const { dir, store } = await tempStore();
    const node = await openLog(store, dir);
    const heard: number[] = [];
    node.onAppended((record) => heard.push(record.index));
    const client = await openLog((await tempStore(dir)).store, dir, { role: 'client' });
    const { index } = await client.append(auditEvent(0));
    // The client learns of its index from the store, and may do so before the node hands the batch on.
    await vi.waitFor(() => expect(heard).toEqual([index]));
    await client.close();
    expect([node.sequencing(), client.sequencing()]).toEqual([true, false]);
  });

  it('the sequencer integrates a queued backlog of several batches in queue order, each event once', async () => {
    const { dir, store } = await tempStore();
    const node = await openLog(store, dir);
    const client = await openLog((await tempStore(dir)).store, dir, { role: 'client' });
    // More than two of the sequencer's batches, queued by the client in its append order.
    const appended = await Promise.all(Array.from({ length: 2500 }, (_, i) => client.append(auditEvent(i))));
    expect(appended.map((a) => a.index)).toEqual(appended.map((_, i) => i));
    const page = await node.events({ limit: 1000 });
    expect(page.records.map((r) => r.event.request_id)).toEqual(page.records.map((_, i) => `req-${i}`));
    await client.close();
    expect(await verifyStoredLog(store.db, node.verifierKey())).toMatchObject({ ok: true, size: 2500 });
  });

  it('a batch whose write fails leaves the batch read and hashed behind it unwritten; the next run resumes after the last commit', async () => {
    const { dir, store } = await tempStore();
    // The queue rows the sequencer reads on its pool connection (the pipeline's first stage).
    const read = new Set<string>();
    const plugin: KyselyPlugin = {
      transformQuery: (args) => args.node,
      async transformResult(args) {
        for (const row of args.result.rows) if (typeof row.event === 'string') read.add(String(row.id));
        return args.result;
      },
    };
    const failures: unknown[] = [];
    const node = await openLog({ ...store, db: store.db.withPlugin(plugin) }, dir, {
      onBackgroundError: (error) => failures.push(error),
    });
    // A real refusal by the store: any event at index 1000 or beyond, so the second batch's write fails.
    await sql`create function refuse_event() returns trigger language plpgsql as $$ begin raise exception 'refused'; end $$`.execute(
      store.db,
    );
    await sql`create trigger refuse_event before insert on audit_events for each row when (new.idx >= 1000)
              execute function refuse_event()`.execute(store.db);
    // Three batches' worth queued at once, as nodes queue them (one transaction, then the notification).
    const ids = Array.from({ length: 2500 }, (_, i) => `backlog:${String(i).padStart(6, '0')}`);
    await store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('audit_queue')
        .values(
          ids.map((id, i) => ({
            id,
            event: canonicalJson(auditEvent(i)),
            queued_at: frozen().toISOString(),
          })),
        )
        .execute();
      await sql`select pg_notify('gatehouse_audit', 'queued')`.execute(trx);
    });
    await vi.waitFor(() => expect(failures.length).toBeGreaterThan(0), { timeout: 10_000 });
    // The third batch was read (and hashed) while the second was being written...
    await vi.waitFor(() => expect(read.has(ids[2499])).toBe(true), { timeout: 10_000 });
    // ...yet only the first batch is in the log: the second failed whole and the third was never written.
    const count = async () =>
      (
        await sql<{
          n: number;
          last: number | null;
          pending: number;
        }>`select (select count(*)::int from audit_events) as n,
         (select max(idx)::int from audit_events) as last,
         (select count(*)::int from audit_queue) as pending`.execute(store.db)
      ).rows[0];
    expect(await count()).toEqual({ n: 1000, last: 999, pending: 1500 });

    await sql`drop trigger refuse_event on audit_events`.execute(store.db);
    await vi.waitFor(async () => expect((await count()).pending).toBe(0), { timeout: 10_000 });
    expect(await count()).toEqual({ n: 2500, last: 2499, pending: 0 });
    // Each queued event once, at the index of its place in the queue.
    const stored = await sql<{
      idx: number;
      request_id: string;
    }>`select idx::int, request_id from audit_events order by idx`.execute(store.db);
    expect(stored.rows).toEqual(ids.map((_, i) => ({ idx: i, request_id: `req-${i}` })));
    expect(await verifyStoredLog(store.db, node.verifierKey())).toMatchObject({ ok: true, size: 2500 });
  });
});

describe('verifying the stored log', () => {
  it('lets the event loop turn between pages of events, so a server goes on serving meanwhile', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    await Promise.all(Array.from({ length: 2500 }, (_, i) => log.append(auditEvent(i))));
    let turns = 0;
    let counting = true;
    const turn = () => {
      if (!counting) return;
      turns += 1;
      setImmediate(turn);
    };
    setImmediate(turn);
    const report = await verifyStoredLog(store.db, log.verifierKey());
    counting = false;
    expect(report).toMatchObject({ ok: true, size: 2500 });
    // Three pages of 1,000 events: the loop turned at least between them.
    expect(turns).toBeGreaterThanOrEqual(2);
  });
});

describe('migration 031: queue rows deleted when integrated', () => {
  it.runIf(onPostgres)(
    'a database the sequencer used before it (integrated and queued rows) upgrades: the integrated rows go, the queued ones are integrated in queue order, appends go on',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const config = loadConfig({
        overrides: { dataDir: dir, ...(await testDatabase(dir)) },
        env: {},
        cwd: dir,
      });
      const before031 = Object.fromEntries(
        Object.entries(gatehouseMigrations).filter(([name]) => name < '031'),
      );
      const old = await openStore(config, { migrations: before031 });
      try {
        // As the sequencer left the queue before 031: rows rewritten with their index, and rows still queued.
        const queuedAt = frozen().toISOString();
        for (let i = 0; i < 5; i++) {
          const integrated = i < 2;
          await sql`insert into audit_queue (id, event, queued_at, idx, integrated_at)
                    values (${`old:${String(i).padStart(6, '0')}`}, ${canonicalJson(auditEvent(i))}, ${queuedAt},
                            ${integrated ? i : null}, ${integrated ? queuedAt : null})`.execute(old.db);
        }
      } finally {
        await old.close();
      }

      const { store } = await tempStore(dir);
      const columns = await sql<{ column_name: string }>`
        select column_name from information_schema.columns
        where table_schema = current_schema() and table_name = 'audit_queue' order by column_name`.execute(
        store.db,
      );
      expect(columns.rows.map((row) => row.column_name)).toEqual(['event', 'id', 'queued_at']);
      const node = await openLog(store, dir);
      const stored = async () =>
        (
          await sql<{
            idx: number;
            request_id: string;
          }>`select idx::int, request_id from audit_events order by idx`.execute(store.db)
        ).rows;
      await vi.waitFor(async () => expect(await stored()).toHaveLength(3), { timeout: 10_000 });
      expect(await stored()).toEqual([2, 3, 4].map((i, idx) => ({ idx, request_id: `req-${i}` })));
      expect(
        (await sql<{ n: number }>`select count(*)::int as n from audit_queue`.execute(store.db)).rows,
      ).toEqual([{ n: 0 }]);
      // A node that only queues (a client) still learns its event's index, now from the log itself.
      const client = await openLog((await tempStore(dir)).store, dir, { role: 'client' });
      await expect(client.append(auditEvent(5))).resolves.toMatchObject({ index: 3 });
      await client.close();
      expect(await verifyStoredLog(store.db, node.verifierKey())).toMatchObject({ ok: true, size: 4 });
    },
  );
});

describe('checkpoints', () => {
  it('signs the current tree as a note the independent verifier accepts, and only when it grew', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    for (let i = 0; i < 5; i++) await log.append(auditEvent(i));
    const note = await log.latestCheckpoint();
    expect(note.split('\n')[0]).toBe(origin);
    expect(tlog.openCheckpoint(note, log.verifierKey())).toMatchObject({ origin, size: 5, signed: true });
    expect(await log.latestCheckpoint()).toBe(note);
    const rows = await store.db.selectFrom('audit_checkpoints').selectAll().execute();
    expect(rows).toEqual([
      {
        size: 5,
        root_hash: tlog.openCheckpoint(note, log.verifierKey()).root.toString('hex'),
        note,
        created_at: frozen().toISOString(),
      },
    ]);
  });

  it.skipIf(onPostgres)(
    'commits a checkpoint on the audit file at synchronous=NORMAL, fsyncing its WAL off the event loop',
    async () => {
      const { dir, store } = await tempStore();
      const statements: string[] = [];
      const recording: KyselyPlugin = {
        transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
          if (node.kind === 'RawNode') statements.push(node.sqlFragments.join('?'));
          return node;
        },
        transformResult: async ({ result }: PluginTransformResultArgs) => result,
      };
      const log = await openLog(store, dir, { db: store.db.withPlugin(recording) });
      await log.append(auditEvent(0));
      statements.length = 0;
      await log.latestCheckpoint();
      // The checkpoint's own commit would otherwise block every request in flight for the disk's fsync.
      expect(statements).toContain('pragma audit.synchronous = NORMAL');
      expect(statements).not.toContain('pragma synchronous = NORMAL');
      const level = await sql<{ synchronous: number }>`pragma audit.synchronous`.execute(store.db);
      expect(level.rows[0]?.synchronous).toBe(2);
      expect(await store.db.selectFrom('audit_checkpoints').select('size').execute()).toEqual([{ size: 1 }]);
    },
  );

  it('signs the empty tree when asked before any event', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    const cp = tlog.openCheckpoint(await log.latestCheckpoint(), log.verifierKey());
    expect(cp).toMatchObject({ size: 0, signed: true });
    expect(cp.root.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('the timer signs while events flow; close() signs a final checkpoint', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir, { checkpointIntervalMs: 10 });
    await log.append(auditEvent(0));
    const signed = async () =>
      (await store.db.selectFrom('audit_checkpoints').select('size').execute()).map((r) => r.size);
    await vi.waitFor(async () => expect(await signed()).toEqual([1]), { timeout: 10_000 });
    await log.append(auditEvent(1));
    const pending = log.append(auditEvent(2));
    await log.close();
    await pending;
    expect((await signed()).at(-1)).toBe(3);
  });

  it('never signs a smaller tree than the latest checkpoint: a truncated store stops signing and appends', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    for (let i = 0; i < 6; i++) await log.append(auditEvent(i));
    await log.latestCheckpoint();
    await store.db.deleteFrom('audit_events').where('idx', '>=', 4).execute();
    await expect(log.latestCheckpoint()).rejects.toMatchObject({ code: 'AUDIT_INTEGRITY' });
    await expect(log.append(auditEvent(9))).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
      cause: expect.objectContaining({ code: 'AUDIT_INTEGRITY' }),
    });
    const sizes = (await store.db.selectFrom('audit_checkpoints').select('size').execute()).map(
      (r) => r.size,
    );
    expect(sizes).toEqual([6]);
  });

  it('never signs a tree inconsistent with the latest checkpoint: a rewritten subtree hash stops signing', async () => {
    const { dir, store } = await tempStore();
    const first = await openLog(store, dir);
    for (let i = 0; i < 4; i++) await first.append(auditEvent(i));
    await first.latestCheckpoint();
    await first.close();
    await store.db
      .updateTable('audit_nodes')
      .set({ hash: 'ab'.repeat(32) })
      .where('level', '=', 2)
      .execute();
    const second = await openLog(store, dir);
    await second.append(auditEvent(4));
    await expect(second.latestCheckpoint()).rejects.toMatchObject({ code: 'AUDIT_INTEGRITY' });
    expect(await store.db.selectFrom('audit_checkpoints').select('size').execute()).toEqual([{ size: 4 }]);
  });
});

describe('signing key', () => {
  it('is made on first start, kept encrypted in the SecretStore, and the same on every start', async () => {
    const { dir, store } = await tempStore();
    const secrets = openLocalSecretStore(dir);
    const key = await auditVerifierKey(secrets, origin);
    expect(key).toMatch(/^gatehouse\.test\/audit\+[0-9a-f]{8}\+[A-Za-z0-9/]+=*$/);
    const log = await openLog(store, dir);
    expect(log.verifierKey()).toBe(key);
    expect(await auditVerifierKey(openLocalSecretStore(dir), origin)).toBe(key);

    const seed = Buffer.from((await secrets.get('audit/checkpoint-signing-key')) as Uint8Array);
    expect(seed).toHaveLength(32);
    for (const file of readdirSync(join(dir, 'secrets'))) {
      const bytes = readFileSync(join(dir, 'secrets', file));
      for (const encoded of [seed, Buffer.from(seed.toString('base64')), Buffer.from(seed.toString('hex'))]) {
        expect(bytes.includes(encoded)).toBe(false);
      }
    }
  });

  it('an origin that cannot name a key is a TypeError', async () => {
    const { dir } = await tempStore();
    await expect(auditVerifierKey(openLocalSecretStore(dir), 'has space')).rejects.toThrow(TypeError);
    await expect(auditVerifierKey(openLocalSecretStore(dir), 'a+b')).rejects.toThrow(TypeError);
  });
});

describe('events()', () => {
  it('filters by request_id, app_id and since, and pages with a cursor', async () => {
    const { dir, store } = await tempStore();
    let clock = Date.parse('2025-03-01T12:00:00.000Z');
    const log = await openLog(store, dir, { now: () => new Date(clock) });
    for (let i = 0; i < 30; i++) {
      clock += 1000;
      await log.append(auditEvent(i));
    }
    const byRequest = await log.events({ request_id: 'req-7' });
    expect(byRequest.records).toHaveLength(1);
    expect(byRequest.records[0]).toMatchObject({ index: 7, event: auditEvent(7) });
    expect(byRequest.records[0].leaf_hash).toBe(
      tlog.leafHash(Buffer.from(tlog.jcs(auditEvent(7)))).toString('hex'),
    );

    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await log.events({ app_id: 'call-notes', limit: 4, cursor });
      seen.push(...page.records.map((r) => r.index));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => 2 * i + 1));

    const since = await log.events({ since: '2025-03-01T12:00:25.000Z' });
    expect(since.records.map((r) => r.index)).toEqual([24, 25, 26, 27, 28, 29]);
    expect((await log.events({ since: '2030-01-01T00:00:00Z' })).records).toEqual([]);
    expect((await log.events({})).records).toHaveLength(30);
  });

  it('append times never go backwards, even when the clock does', async () => {
    const { dir, store } = await tempStore();
    const times = ['2025-03-01T12:00:10.000Z', '2025-03-01T12:00:05.000Z', '2025-03-01T12:00:20.000Z'];
    let call = 0;
    const log = await openLog(store, dir, { now: () => new Date(times[Math.min(call++, times.length - 1)]) });
    for (let i = 0; i < 3; i++) await log.append(auditEvent(i));
    const rows = await store.db.selectFrom('audit_events').select('created_at').orderBy('idx').execute();
    expect(rows.map((r) => r.created_at)).toEqual([times[0], times[0], times[2]]);
    expect((await log.events({ since: '2025-03-01T12:00:06.000Z' })).records.map((r) => r.index)).toEqual([
      0, 1, 2,
    ]);
  });

  it('rejects a bad limit, cursor or since with INVALID_INPUT', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    for (const q of [
      { limit: 0 },
      { limit: 1001 },
      { limit: 1.5 },
      { cursor: 'abc' },
      { cursor: '-1' },
      { since: 'yesterday' },
    ]) {
      await expect(log.events(q)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    }
  });
});

describe('proofs from stored subtree hashes', () => {
  it('inclusion proofs of every event and consistency proofs between sizes verify with the independent verifier', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    const notes: string[] = [];
    const leaves: Buffer[] = [];
    for (let i = 0; i < 37; i++) {
      leaves.push(unhex((await log.append(auditEvent(i))).leafHash));
      if (i % 6 === 0) notes.push(await log.latestCheckpoint());
    }
    notes.push(await log.latestCheckpoint());
    const cps = notes.map((note) => tlog.openCheckpoint(note, log.verifierKey()));
    for (const cp of cps) {
      expect(cp.signed).toBe(true);
      for (let i = 0; i < cp.size; i++) {
        const proof = (await log.inclusionProof(i, cp.size)).map(unhex);
        expect(tlog.verifyInclusion(i, cp.size, leaves[i], proof, cp.root)).toBe(true);
      }
      for (const later of cps.filter((c) => c.size >= cp.size)) {
        const proof = (await log.consistencyProof(cp.size, later.size)).map(unhex);
        if (cp.size === later.size) expect(proof).toEqual([]);
        else expect(tlog.verifyConsistency(cp.size, later.size, cp.root, later.root, proof)).toBe(true);
      }
    }
  });

  it('out-of-range proof requests are INVALID_INPUT', async () => {
    const { dir, store } = await tempStore();
    const log = await openLog(store, dir);
    for (let i = 0; i < 3; i++) await log.append(auditEvent(i));
    for (const [index, size] of [
      [3, 3],
      [0, 4],
      [-1, 2],
      [0.5, 2],
      [0, 0],
    ]) {
      await expect(log.inclusionProof(index, size)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    }
    for (const [from, to] of [
      [2, 1],
      [1, 4],
      [-1, 2],
    ]) {
      await expect(log.consistencyProof(from, to)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    }
    expect(await log.consistencyProof(3, 3)).toEqual([]);
  });

  it('a proof in a 100,000-event log reads O(log n) rows, not the log', async () => {
    const { dir, store } = await tempStore();
    const writer = await openLog(store, dir);
    const n = 100_000;
    for (let start = 0; start < n; start += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writer.append(auditEvent(start + i))));
    }
    const cp = tlog.openCheckpoint(await writer.latestCheckpoint(), writer.verifierKey());
    expect(cp.size).toBe(n);

    const counter = counting();
    const reader = await openLog({ ...store, db: store.db.withPlugin(counter.plugin) }, dir);
    const bound = 2 * Math.ceil(Math.log2(n)) + 2;
    for (const index of [0, 31_337, 65_535, 99_999]) {
      counter.reset();
      const proof = await reader.inclusionProof(index, n);
      expect(counter.stats.rows).toBeLessThanOrEqual(bound);
      expect(counter.stats.queries).toBeLessThanOrEqual(3);
      const leaf = unhex(tlog.leafHash(Buffer.from(tlog.jcs(auditEvent(index)))).toString('hex'));
      expect(tlog.verifyInclusion(index, n, leaf, proof.map(unhex), cp.root)).toBe(true);
    }
    counter.reset();
    const proof = await reader.consistencyProof(77_777, n);
    expect(proof.length).toBeGreaterThan(0);
    expect(counter.stats.rows).toBeLessThanOrEqual(bound);
    expect(counter.stats.queries).toBeLessThanOrEqual(3);
  }, 120_000);
});
