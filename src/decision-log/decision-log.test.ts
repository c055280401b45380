import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, testDatabase } from '../../test/support/database.js';
import { loadConfig } from '../config/index.js';
import { type PolicySet } from '../policy/index.js';
import { alice, decisionRecorder } from '../policy/test-support.js';
import { loadPolicySet } from '../policy-library/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { openDecisionLog, simulateRecorded } from './decision-log.js';

let policies: PolicySet;
let stores: Store[] = [];
beforeAll(async () => {
  policies = await loadPolicySet();
});
afterEach(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  stores = [];
});

async function freshStore(): Promise<Store> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-decisions-'));
  const store = await openGatehouseStore(
    loadConfig({ env: {}, overrides: { dataDir, ...(await testDatabase(dataDir)) } }),
  );
  stores.push(store);
  return store;
}

const decided = decisionRecorder(() => policies);

describe('the decision log in the store', () => {
  it('writes in batches, reads back oldest first across pages, and replays what it read', async () => {
    const store = await freshStore();
    const log = openDecisionLog(store.db, { flushMs: 10 });
    const start = Date.now() - 60_000;
    for (let i = 0; i < 1203; i++) {
      log.record(
        decided(
          `r${String(i).padStart(4, '0')}`,
          { principal: alice, action: 'read', object: 'contact' },
          new Date(start + i),
        ),
      );
    }
    await log.flush();
    const since = new Date(start).toISOString();
    expect(await log.count(since)).toBe(1203);
    const ids: string[] = [];
    for await (const decision of log.read(since)) ids.push(decision?.requestId ?? 'unreadable');
    expect(ids).toHaveLength(1203);
    expect(ids).toEqual([...ids].sort());
    expect(await log.count(new Date(start + 1000).toISOString())).toBe(203);

    const progress: number[] = [];
    const report = await simulateRecorded(policies, log, since, (done) => progress.push(done));
    expect(report).toMatchObject({ total: 1203, unchanged: 1203, since });
    expect(progress.at(-1)).toBe(1203);
    await log.close();
  });

  it.skipIf(onPostgres)(
    'commits a batch without an fsync but leaves the connection as durable as it found it (SQLite)',
    async () => {
      const store = await freshStore();
      const level = async () =>
        (await sql<{ synchronous: number }>`pragma synchronous`.execute(store.db)).rows[0]?.synchronous;
      expect(await level()).toBe(2);
      const log = openDecisionLog(store.db);
      log.record(decided('r1', { principal: alice, action: 'read', object: 'contact' }));
      await log.flush();
      expect(await log.count(new Date(0).toISOString())).toBe(1);
      // The audit log's appends, on the same connection, are durable only at FULL (2).
      expect(await level()).toBe(2);
      await log.close();
    },
  );

  it('skips a stored row that does not parse instead of guessing', async () => {
    const store = await freshStore();
    const log = openDecisionLog(store.db);
    log.record(decided('good', { principal: alice, action: 'read', object: 'contact' }));
    log.record(decided('tampered', { principal: alice, action: 'read', object: 'contact' }));
    await log.flush();
    await store.db
      .withTables<{ policy_decisions: { request_id: string; input: string } }>()
      .updateTable('policy_decisions')
      .set({ input: '{"principal":{"id":"x"},"action":"drop table"}' })
      .where('request_id', '=', 'tampered')
      .execute();
    const report = await simulateRecorded(policies, log, new Date(0).toISOString());
    expect(report).toMatchObject({ total: 1, unreadable: 1 });
  });

  it('prunes decisions older than the retention when it opens', async () => {
    const store = await freshStore();
    const writer = openDecisionLog(store.db);
    const day = 86_400_000;
    writer.record(
      decided(
        'old',
        { principal: alice, action: 'read', object: 'contact' },
        new Date(Date.now() - 10 * day),
      ),
    );
    writer.record(
      decided('recent', { principal: alice, action: 'read', object: 'contact' }, new Date(Date.now() - day)),
    );
    await writer.close();
    const pruning = openDecisionLog(store.db, { retentionDays: 7 });
    await expect.poll(() => pruning.count(new Date(0).toISOString())).toBe(1);
    const left: string[] = [];
    for await (const decision of pruning.read(new Date(0).toISOString()))
      left.push(String(decision?.requestId));
    expect(left).toEqual(['recent']);
    await pruning.close();
  });

  it('keeps at most maxQueued decisions while the store cannot be written, and says how many it dropped', async () => {
    const store = await freshStore();
    const failures: number[] = [];
    const log = openDecisionLog(store.db, {
      maxQueued: 3,
      onError: (_error, dropped) => failures.push(dropped),
    });
    await store.close();
    for (let i = 0; i < 5; i++)
      log.record(decided(`r${i}`, { principal: alice, action: 'read', object: 'contact' }));
    await log.flush();
    expect(failures).toEqual([2]);
  });
});
