import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import type { AuditEvent } from './event.js';
import { AuditWriter, sqliteFileOf } from './writer.js';

// The writer thread runs from dist/ when this file runs from source: `npm run build` first.
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sqliteStore(): Promise<{ dir: string; store: Store }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-writer-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openGatehouseStore(loadConfig({ overrides: { dataDir: dir }, env: {}, cwd: dir }));
  cleanups.push(() => store.close());
  return { dir, store };
}

const event = (i: number): AuditEvent => ({
  timestamp: '2025-03-01T12:00:00.000Z',
  actor_id: 'alice@example.com',
  actor_role: 'sales',
  app_id: 'call-notes',
  action: 'crm.read',
  resource_type: 'contact',
  resource_id: `c${i}`,
  scope: 'read:contact.basic',
  request_id: `req-${i}`,
  trace_id: '',
  outcome: 'allow',
  reason: 'allowed',
});

const request = (events: AuditEvent[]) => ({
  since: performance.timeOrigin + performance.now(),
  at: '2025-03-01T12:00:00.000Z',
  events,
});

describe('the audit writer thread', () => {
  it('encodes, hashes and commits a batch in its own thread; a malformed event is reported, not written', async () => {
    const { store } = await sqliteStore();
    const writer = new AuditWriter(await sqliteFileOf(store.db), () => undefined);
    cleanups.push(() => writer.stop());
    const outcomes = await writer.write(
      request([event(0), { ...event(1), outcome: 'perhaps' } as unknown as AuditEvent, event(2)]),
    );
    expect(outcomes).toMatchObject([{ index: 0 }, { malformed: expect.any(String) }, { index: 1 }]);
    const rows = await store.db
      .selectFrom('audit_events')
      .select(['idx', 'request_id'])
      .orderBy('idx')
      .execute();
    expect(rows).toEqual([
      { idx: 0, request_id: 'req-0' },
      { idx: 1, request_id: 'req-2' },
    ]);
  });

  it('a thread that dies with a batch out refuses it at once (no hang), is reported, and the next batch gets a new thread', async () => {
    const { dir, store } = await sqliteStore();
    const stopped: Error[] = [];
    const writer = new AuditWriter(await sqliteFileOf(store.db), (error) => stopped.push(error));
    cleanups.push(() => writer.stop());
    await writer.write(request([event(0)]));
    // Another connection holds the write lock, so the batch is still out in the thread when it dies.
    const holder = new SQLite(join(dir, 'audit.db'));
    holder.exec('begin immediate');
    const out = writer.write(request([event(1)]));
    await writer.stop();
    await expect(out).rejects.toMatchObject({ code: 'AUDIT_THREAD_STOPPED' });
    expect(stopped).toHaveLength(1);
    holder.exec('commit');
    holder.close();
    await expect(writer.write(request([event(2)]))).resolves.toMatchObject([{ index: 1 }]);
  });
});
