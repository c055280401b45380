import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { findIncident, incidentIds, recordDetection, transition } from './incidents.js';
import type { Detection } from './types.js';
import { testDatabase } from '../../test/support/database.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function store(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-incidents-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const opened = await openGatehouseStore(
    loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir }),
  );
  cleanups.push(() => opened.close());
  return opened;
}

const detection = (at: string, severity: Detection['severity'] = 'high'): Detection => ({
  rule: 'mass_export',
  severity,
  actor: 'erin@example.com',
  app: 'call-notes',
  summary: 'paged past the bulk-export guard',
  evidence: [1, 2],
  at,
});
const ids = incidentIds();
const recorded = { playbookVersion: 'v1', ids };

describe('recordDetection', () => {
  it('opens one incident per rule, actor and app, and adds later detections to it', async () => {
    const { db } = await store();
    const first = await recordDetection(db, detection('2026-11-29T10:00:00.000Z'), {
      ...recorded,
      now: new Date('2026-11-29T10:00:01.000Z'),
    });
    const second = await recordDetection(db, detection('2026-11-29T10:00:02.000Z', 'critical'), {
      ...recorded,
      now: new Date('2026-11-29T10:00:03.000Z'),
    });
    expect([first.opened, second.opened, second.escalated]).toEqual([true, false, true]);
    expect(second.incident).toMatchObject({ id: first.incident.id, detections: 2, severity: 'critical' });
  });

  it('a finding about events from before the close stays with the closed incident: no reopening, no containment', async () => {
    const { db } = await store();
    const { incident } = await recordDetection(db, detection('2026-11-29T10:00:00.000Z'), {
      ...recorded,
      now: new Date('2026-11-29T10:00:01.000Z'),
    });
    await transition(db, incident.id, 'closed', {
      by: 'dave@example.com',
      detail: 'handled',
      now: new Date('2026-11-29T10:00:05.000Z'),
      ids,
    });
    // Coalesced or read late: its last event came before the close, its write after.
    const late = await recordDetection(db, detection('2026-11-29T10:00:04.000Z', 'critical'), {
      ...recorded,
      now: new Date('2026-11-29T10:00:06.000Z'),
    });
    expect(late).toMatchObject({ opened: false, escalated: false });
    expect(late.incident).toMatchObject({
      id: incident.id,
      state: 'closed',
      severity: 'high',
      detections: 2,
    });
    expect((await findIncident(db, incident.id)).timeline.at(-1)).toMatchObject({ kind: 'detected' });
    // The same conduct after the close is a new incident.
    const again = await recordDetection(db, detection('2026-11-29T10:00:07.000Z'), {
      ...recorded,
      now: new Date('2026-11-29T10:00:08.000Z'),
    });
    expect(again.opened).toBe(true);
    expect(again.incident.id).not.toBe(incident.id);
  });
});

describe('incident ids', () => {
  it('are ordered within one minter in the same millisecond, and no count is shared between minters', () => {
    const at = new Date('2026-11-29T10:00:00.000Z');
    const mint = incidentIds();
    const made = [mint('inc', at), mint('inc', at), mint('inc', at)];
    expect(made).toEqual([...made].sort());
    expect(made.map((id) => id.slice(13, 15))).toEqual(['00', '01', '02']);
    // Another detector or desk starts its own count, whatever this one minted.
    expect(incidentIds()('inc', at).slice(0, 15)).toBe(made[0]?.slice(0, 15));
  });
});
