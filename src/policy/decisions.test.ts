import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../server/index.js';
import type { Store } from '../store/index.js';
import { authorizeRequest, type AuthorizeInput } from './authorize.js';
import { openDecisionLog, simulateRecorded } from './decision-log.js';
import { DecisionReplay, recordDecision, sinceTime, type RecordedDecision } from './decisions.js';
import { loadPolicySet, type PolicySet } from './library.js';
import { alice, bob, erin, variant } from './test-support.js';
import { onPostgres, testDatabase } from '../../test/support/database.js';

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

function decided(
  requestId: string,
  input: Omit<AuthorizeInput, 'context'>,
  at = new Date(),
): RecordedDecision {
  const full = { ...input, context: { fields: ['first_name'], recordCount: 1, ip: '10.1.2.0/24', time: at } };
  return recordDecision(requestId, full, authorizeRequest(policies, full));
}

const emeaRecord = { id: 'c1', territory: 'EMEA', owner: 'bob@example.com', account: 'a1' };

describe('a recorded decision', () => {
  it("holds Cedar's input — ids, role, territory, app, scopes, field names, classes, count, network — and the outcome", () => {
    const decision = decided('r1', {
      principal: alice,
      action: 'read',
      object: 'contact',
      resource: emeaRecord,
    });
    expect(decision).toEqual({
      requestId: 'r1',
      timestamp: expect.any(String),
      version: policies.version,
      input: {
        principal: {
          id: 'alice',
          email: 'alice@example.com',
          role: 'sales_rep',
          territory: 'EMEA',
          app: 'call-notes',
          scopes: ['read:contact.basic'],
        },
        action: 'read',
        object: 'contact',
        resource: emeaRecord,
        context: { fields: ['first_name'], field_classes: ['internal'], record_count: 1, ip: '10.1.2.0/24' },
      },
      allowed: true,
      policyIds: ['runtime.sales-own-territory'],
    });
  });

  it('replays to the same decision under the same library, hour and weekday included', async () => {
    const night = new Date('2025-03-02T23:30:00Z');
    const withHours = await variant({
      'runtime/hours.cedar':
        '@id("runtime.office-hours")\n@reason("test")\n' +
        'forbid (principal, action == Gatehouse::Action::"read", resource) when { context.hour < 6 || context.weekday == 0 };\n',
    });
    const input = {
      principal: alice,
      action: 'read' as const,
      object: 'contact',
      resource: emeaRecord,
      context: { fields: ['first_name'], recordCount: 1, ip: '10.1.2.0/24', time: night },
    };
    const decision = recordDecision('r2', input, authorizeRequest(withHours, input));
    expect(decision).toMatchObject({ allowed: false, policyIds: ['runtime.office-hours'] });
    const replay = new DecisionReplay(withHours);
    replay.add(decision);
    expect(replay.report()).toMatchObject({ total: 1, unchanged: 1 });
  });
});

describe('DecisionReplay', () => {
  it('sorts flips and changed row filters under the rules that decide them in the candidate', async () => {
    const decisions = [
      decided('a-na', {
        principal: alice,
        action: 'read',
        object: 'contact',
        resource: { ...emeaRecord, territory: 'NA' },
      }),
      decided('a-emea', { principal: alice, action: 'read', object: 'contact', resource: emeaRecord }),
      decided('a-list', { principal: alice, action: 'read', object: 'contact' }),
      decided('e-list', { principal: erin, action: 'read', object: 'contact' }),
      decided('b-export', { principal: bob, action: 'export', object: 'contact', resource: emeaRecord }),
    ];
    const candidate = await variant({
      'runtime/territory.cedar':
        '@id("runtime.sales-everywhere")\n@reason("sales read everything")\n' +
        'permit (principal in Gatehouse::Role::"sales_rep", action == Gatehouse::Action::"read", resource);\n',
      'runtime/export.cedar': null,
    });
    const replay = new DecisionReplay(candidate);
    for (const decision of decisions) replay.add(decision);
    replay.skip();
    const report = replay.report();
    expect(report).toMatchObject({
      candidate: candidate.version,
      recorded: { [policies.version]: 5 },
      total: 5,
      unchanged: 1,
      unreadable: 1,
      changes: {
        deny_to_allow: {
          count: 1,
          rules: [{ rule: 'runtime.sales-everywhere', count: 1, examples: ['a-na'] }],
        },
        allow_to_deny: { count: 1, rules: [{ rule: 'default-deny', count: 1, examples: ['b-export'] }] },
        row_filter_changed: {
          count: 2,
          rules: [{ rule: 'runtime.sales-everywhere', count: 2, examples: ['a-list', 'e-list'] }],
        },
      },
    });
  });

  it('keeps at most five example request ids per rule', async () => {
    const candidate = await variant({ 'runtime/territory.cedar': null });
    const replay = new DecisionReplay(candidate);
    for (let i = 0; i < 8; i++) {
      replay.add(
        decided(`r${i}`, { principal: alice, action: 'read', object: 'contact', resource: emeaRecord }),
      );
    }
    const [rule] = replay.report().changes.allow_to_deny.rules;
    expect(rule).toEqual({ rule: 'default-deny', count: 8, examples: ['r0', 'r1', 'r2', 'r3', 'r4'] });
  });
});

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

describe('since', () => {
  const now = new Date('2025-03-10T12:00:00Z');
  it('takes a duration or an ISO time', () => {
    expect(sinceTime('7d', now)).toBe('2025-03-03T12:00:00.000Z');
    expect(sinceTime('12h', now)).toBe('2025-03-10T00:00:00.000Z');
    expect(sinceTime('30m', now)).toBe('2025-03-10T11:30:00.000Z');
    expect(sinceTime('2025-03-01T00:00:00Z', now)).toBe('2025-03-01T00:00:00.000Z');
  });

  it.each(['', '7', '0d', '-1d', '7w', 'yesterday', '2025-13-45'])('refuses %j with a 422', (value) => {
    expect(() => sinceTime(value, now)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
