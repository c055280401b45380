import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openAuditLog, type AuditLog } from '../audit/index.js';
import { detectSchema, loadConfig } from '../config/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import type { Containment } from './containment.js';
import { createDetector, type DetectLogger } from './engine.js';
import { findIncident, listIncidents } from './incidents.js';
import { parsePlaybook } from './playbook.js';
import { eventOf } from './synthetic.js';
import type { Rule } from './types.js';
import { onPostgres, testDatabase } from '../../test/support/database.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A store and its audit log; `dir` again opens another process's (another node's) view of the same. */
async function setup(existing?: string): Promise<{ store: Store; log: AuditLog; dir: string }> {
  const dir = existing ?? mkdtempSync(join(tmpdir(), 'gatehouse-detect-'));
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
  return { store, log, dir };
}

/** A test rule: counts the events it sees (by index, so a second look shows) and fires on the third. */
const counting: Rule<unknown> = {
  id: 'rate_anomaly',
  initial: () => ({ seen: [] }),
  step: (state, { index, event }) => {
    const seen = [...(state as { seen: number[] }).seen, index];
    const detections =
      seen.length === 3
        ? [
            {
              rule: 'rate_anomaly' as const,
              severity: 'high' as const,
              actor: event.actor_id,
              app: event.app_id,
              summary: 'three events',
              evidence: seen,
              at: event.timestamp,
            },
          ]
        : [];
    return { state: { seen }, detections };
  },
};

const until = async (condition: () => Promise<boolean> | boolean, what: string) => {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

/** What every test detector shares: its store and log, the test playbook, no alert sinks, the recorder's levers. */
function testOptions(
  node: { store: Store; log: AuditLog },
  { containment, logger }: { containment: Containment; logger: DetectLogger },
) {
  return {
    db: node.store.db,
    audit: node.log,
    config: detectSchema.parse({}),
    playbook,
    sinks: [],
    containment,
    logger,
  };
}

function recorder() {
  const calls: string[] = [];
  const containment: Containment = {
    throttleApp: async (app, t) => void calls.push(`throttle ${app} ${t.ratePerSecond}/s ${t.forSeconds}s`),
    unthrottleApp: async (app) => void calls.push(`unthrottle ${app}`),
    revokeTokens: async (target) => void calls.push(`revoke ${JSON.stringify(target)}`),
    suspendApp: async (app, o) => void calls.push(`suspend ${app} by ${o.by}`),
    restoreApp: async (app, o) => void calls.push(`restore ${app} by ${o.by}`),
    throttleNetwork: async (network, t) =>
      void calls.push(`throttle network ${network} ${t.ratePerSecond}/s ${t.forSeconds}s`),
    unthrottleNetwork: async (network) => void calls.push(`unthrottle network ${network}`),
  };
  const logged: string[] = [];
  const logger: DetectLogger = {
    info: (_d, m) => void logged.push(m),
    warn: (_d, m) => void logged.push(m),
    error: (_d, m) => void logged.push(m),
  };
  return { calls, containment, logger, logged };
}

const playbook = parsePlaybook(
  [
    'version: 1',
    'throttle: { rate_per_second: 1, for_seconds: 60 }',
    'playbooks:',
    '  - { rule: mass_export, actions: [alert, revoke_app_tokens, suspend_app] }',
    '  - { rule: denial_burst, actions: [throttle_app] }',
    '  - { rule: "*", actions: [alert] }',
  ].join('\n'),
  'test playbook',
);

const guardRefusal = (actor = 'erin@example.com') =>
  eventOf({
    at: Date.now() / 1000,
    actor,
    app: 'call-notes',
    action: 'bulk_export',
    outcome: 'deny',
    reason:
      'guard=bulk_export_guard object=contact threshold=50 attempted=80 table_size=2000 window_seconds=3600',
  });

describe('the detector', () => {
  it('streams appended events: a refusal of the bulk-export guard opens one incident and contains once', async () => {
    const { store, log } = await setup();
    const { calls, containment, logger } = recorder();
    const detector = createDetector(testOptions({ store, log }, { containment, logger }));
    await detector.start();
    cleanups.push(() => detector.close());
    const { index } = await log.append(guardRefusal());
    // A second refusal within a second shares the incident's next write: no second incident, no second containment.
    const second = await log.append(guardRefusal());
    await detector.idle();

    const { records } = await listIncidents(store.db, {});
    expect(records).toHaveLength(1);
    const incident = await findIncident(store.db, records[0].id);
    expect(incident).toMatchObject({
      rule: 'mass_export',
      actor: 'erin@example.com',
      app_id: 'call-notes',
      state: 'open',
      severity: 'high',
    });
    expect(incident.evidence).toEqual([index, second.index]);
    expect(incident.detections).toBe(2);
    expect(calls).toEqual(['revoke {"appId":"call-notes"}', 'suspend call-notes by detect']);
    expect(incident.containment.map((c) => [c.action, c.status])).toEqual([
      ['revoke_app_tokens', 'applied'],
      ['suspend_app', 'applied'],
    ]);
    expect(incident.timeline.map((t) => t.kind)).toEqual(['detected', 'contained', 'contained', 'detected']);
    expect(incident.timeline[0].detail).toMatch(/detected \d+ ms after its append/);

    // Containment is itself audited, and not fed back into the rules.
    const audited = await log.events({ request_id: incident.id });
    expect(audited.records.map((r) => [r.event.action, r.event.actor_id, r.event.resource_id])).toEqual([
      ['detect.contain', 'detect', 'app:call-notes'],
      ['detect.contain', 'detect', 'app:call-notes'],
    ]);
    expect(detector.stats()).toMatchObject({ detections: 2, incidentsOpened: 1, ruleErrors: 0 });
  });

  it('a rule that throws is logged and counted; the other rules and every append go on', async () => {
    const { store, log } = await setup();
    const { containment, logger, logged } = recorder();
    const crashing: Rule<unknown> = {
      id: 'new_network',
      initial: () => ({}),
      step: () => {
        throw new Error('bug in a rule');
      },
    };
    const detector = createDetector({
      ...testOptions({ store, log }, { containment, logger }),
      rules: [crashing, ...(await import('./rules/index.js')).rulesFrom(detectSchema.parse({}))],
    });
    await detector.start();
    cleanups.push(() => detector.close());
    await expect(log.append(guardRefusal())).resolves.toMatchObject({ index: 0 });
    await log.append(guardRefusal('bob@example.com'));
    await detector.idle();
    expect(detector.stats()).toMatchObject({ events: 2, ruleErrors: 2, incidentsOpened: 2 });
    expect(logged.filter((m) => m.includes('rule failed'))).toHaveLength(2);
  });

  it('runs off the request path: an append resolves before any rule has seen its event', async () => {
    const { store, log } = await setup();
    const { containment, logger } = recorder();
    const seen: number[] = [];
    const watching: Rule<unknown> = {
      id: 'new_network',
      initial: () => ({}),
      step: (state, observed) => {
        seen.push(observed.index);
        return { state, detections: [] };
      },
    };
    const detector = createDetector({
      ...testOptions({ store, log }, { containment, logger }),
      rules: [watching],
    });
    await detector.start();
    cleanups.push(() => detector.close());
    await log.append(guardRefusal());
    expect(seen).toEqual([]);
    await detector.idle();
    expect(seen).toEqual([0]);
  });

  it('a failed lever is recorded as such and the next one is still pulled', async () => {
    const { store, log } = await setup();
    const { calls, containment, logger } = recorder();
    const detector = createDetector({
      ...testOptions({ store, log }, { containment, logger }),
      containment: {
        ...containment,
        revokeTokens: async () => {
          throw new Error('revocation store unavailable');
        },
      },
    });
    await detector.start();
    cleanups.push(() => detector.close());
    await log.append(guardRefusal());
    await detector.idle();
    const [incident] = (await listIncidents(store.db, {})).records;
    expect(incident.containment.map((c) => [c.action, c.status])).toEqual([
      ['revoke_app_tokens', 'failed'],
      ['suspend_app', 'applied'],
    ]);
    expect(calls).toEqual(['suspend call-notes by detect']);
    const audited = await log.events({ request_id: incident.id });
    expect(audited.records.map((r) => r.event.outcome)).toEqual(['error', 'allow']);
  });

  it('keeps rule states across a restart: learning is not lost', async () => {
    const { store, log } = await setup();
    const { containment, logger } = recorder();
    const options = testOptions({ store, log }, { containment, logger });
    const first = createDetector(options);
    await first.start();
    await log.append(
      eventOf({
        at: Date.now() / 1000,
        actor: 'alice@example.com',
        app: 'call-notes',
        action: 'crm.read',
        records: 1,
        network: '10.1.2.0/24',
      }),
    );
    await first.idle();
    await first.close();
    const saved = await store.db
      .selectFrom('detect_state' as never)
      .selectAll()
      .execute();
    expect(saved.map((r) => (r as { rule: string }).rule)).toContain('new_network');
    const second = createDetector(options);
    await second.start();
    cleanups.push(() => second.close());
    const state = JSON.parse(
      (saved as Array<{ rule: string; state: string }>).find((r) => r.rule === 'new_network')!.state,
    );
    expect(state.users['alice@example.com'].networks).toEqual(['10.1.2.0/24']);
  });

  it("reads from the store what the stream skipped: another process's appends, and those made while it was down", async () => {
    const { store, log, dir } = await setup();
    const { containment, logger } = recorder();
    const options = {
      ...testOptions({ store, log }, { containment, logger }),
      rules: [counting],
      followMs: 50,
    };
    const first = createDetector(options);
    await first.start();
    await log.append(guardRefusal());
    await first.idle();
    await first.close();
    // While no detector runs, and through another process's (on PostgreSQL, another node's) log.
    await log.append(guardRefusal());
    const other = await setup(dir);
    await other.log.append(guardRefusal());
    const second = createDetector(options);
    await second.start();
    cleanups.push(() => second.close());
    await until(async () => (await listIncidents(store.db, {})).records.length > 0, 'the incident');
    await second.idle();
    const [incident] = (await listIncidents(store.db, {})).records;
    expect(incident).toMatchObject({ rule: 'rate_anomaly', detections: 1 });
    // Each event seen exactly once, in order, across the restart.
    await second.close();
    const saved = await store.db
      .selectFrom('detect_state' as never)
      .selectAll()
      .execute();
    const row = (saved as Array<{ rule: string; state: string; through: unknown }>).find(
      (r) => r.rule === 'rate_anomaly',
    )!;
    expect(JSON.parse(row.state)).toEqual({ seen: [0, 1, 2] });
    expect(Number(row.through)).toBe(2);
  });

  it('a save never replaces rule states that go further (a node that lost the role saving late)', async () => {
    const { store, log } = await setup();
    const { containment, logger } = recorder();
    const options = {
      ...testOptions({ store, log }, { containment, logger }),
      rules: [counting],
    };
    const behind = createDetector(options);
    await behind.start();
    await log.append(guardRefusal());
    await behind.idle();
    const ahead = createDetector(options);
    await ahead.start();
    await log.append(guardRefusal());
    await Promise.all([behind.idle(), ahead.idle()]);
    await ahead.close();
    await store.db
      .updateTable('detect_state' as never)
      .set({ through: 5 } as never)
      .execute();
    await behind.close();
    const [row] = (await store.db
      .selectFrom('detect_state' as never)
      .selectAll()
      .execute()) as Array<{ through: unknown }>;
    expect(Number(row.through)).toBe(5);
  });

  it.runIf(onPostgres)(
    "PostgreSQL: only the sequencer node detects, over every node's events; the next sequencer goes on from its saved states",
    async () => {
      const a = await setup();
      const b = await setup(a.dir);
      expect([a.log.sequencing(), b.log.sequencing()]).toEqual([true, false]);
      const detectorOf = (node: { store: Store; log: AuditLog }) => {
        const { containment, logger } = recorder();
        return createDetector({
          ...testOptions(node, { containment, logger }),
          rules: [counting],
          followMs: 50,
          saveIntervalMs: 60_000,
        });
      };
      const onA = detectorOf(a);
      const onB = detectorOf(b);
      await onA.start();
      await onB.start();
      cleanups.push(() => onB.close());
      // Events appended on B are integrated, and so watched, on A.
      await b.log.append(guardRefusal());
      await b.log.append(guardRefusal());
      // B's append is acknowledged at A's commit; A hands the batch to its listeners just after.
      await until(() => onA.stats().events === 2, "A's detector to see both events");
      await onA.idle();
      expect(onA.stats().events).toBe(2);
      expect(onB.stats().events).toBe(0);
      // A goes away (its states saved on close); B takes the role and both over.
      await onA.close();
      await a.log.close();
      await until(() => b.log.sequencing(), 'B to take the sequencer role');
      await b.log.append(guardRefusal());
      await until(async () => (await listIncidents(b.store.db, {})).records.length > 0, 'the incident');
      await onB.idle();
      expect(onB.stats().events).toBe(1);
      const [incident] = (await listIncidents(b.store.db, {})).records;
      expect(incident).toMatchObject({ rule: 'rate_anomaly', detections: 1 });
    },
  );
});
