import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import { leafHashHex, canonicalJson, openAuditLog, type AuditEvent, type AuditEventRecord } from './index.js';
import { onPostgres, testDatabase } from '../../test/support/database.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A log over a new store, or (with `dir`) another node's log over the same store. */
async function openLog(existing?: string) {
  const dir = existing ?? mkdtempSync(join(tmpdir(), 'gatehouse-listen-'));
  if (!existing) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openGatehouseStore(
    loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir }),
  );
  cleanups.push(() => store.close());
  const log = await openAuditLog({
    db: store.db,
    secrets: openLocalSecretStore(dir),
    origin: 'gatehouse.test/audit',
  });
  cleanups.push(() => log.close().catch(() => undefined));
  return Object.assign(log, { dir });
}

const event = (i: number): AuditEvent => ({
  timestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
  actor_id: 'alice@example.com',
  actor_role: 'sales_rep',
  app_id: 'call-notes',
  action: 'crm.read',
  resource_type: 'contact',
  resource_id: `c${i}`,
  scope: 'read:contact.basic',
  request_id: `r${i}`,
  trace_id: `t${i}`,
  outcome: 'allow',
  reason: 'ok',
});

describe('onAppended', () => {
  it('sees every durable append once, in index order, as stored (unknown fields dropped, frozen)', async () => {
    const log = await openLog();
    const seen: AuditEventRecord[] = [];
    log.onAppended((record) => seen.push(record));
    const appended = await Promise.all(
      Array.from({ length: 30 }, (_, i) => log.append({ ...event(i), secret: 'x' } as AuditEvent)),
    );
    expect(seen.map((r) => r.index)).toEqual(appended.map((a) => a.index));
    expect(seen.map((r) => r.index)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(seen[3].event).toEqual(event(3));
    expect(seen[3].leaf_hash).toBe(leafHashHex(canonicalJson(event(3))));
    expect(Object.isFrozen(seen[3].event)).toBe(true);
  });

  it('a listener that throws fails no append, and unsubscribing stops the calls', async () => {
    const log = await openLog();
    const seen: number[] = [];
    log.onAppended(() => {
      throw new Error('rule crashed');
    });
    const stop = log.onAppended((record) => seen.push(record.index));
    await expect(log.append(event(0))).resolves.toMatchObject({ index: 0 });
    stop();
    await log.append(event(1));
    expect(seen).toEqual([0]);
  });

  it('is not called for an append that failed', async () => {
    const log = await openLog();
    const seen: number[] = [];
    log.onAppended((record) => seen.push(record.index));
    await log.close();
    await expect(log.append(event(0))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(seen).toEqual([]);
  });

  it.runIf(onPostgres)(
    "PostgreSQL: the sequencer's listeners hear every node's events in index order; the others hear none",
    async () => {
      const sequencer = await openLog();
      const other = await openLog(sequencer.dir);
      expect([sequencer.sequencing(), other.sequencing()]).toEqual([true, false]);
      const heard: number[] = [];
      const heardElsewhere: number[] = [];
      sequencer.onAppended((record) => heard.push(record.index));
      other.onAppended((record) => heardElsewhere.push(record.index));
      const appended = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? sequencer : other).append(event(i))),
      );
      // The other node learns of its indexes from the store, and may do so before the sequencer hands the batch on.
      await vi.waitFor(() => expect(heard).toEqual(appended.map((a) => a.index).sort((a, b) => a - b)));
      expect(heardElsewhere).toEqual([]);
    },
  );
});
