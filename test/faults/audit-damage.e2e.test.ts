import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatehouse } from '../support/cli.js';
import { onPostgres, openTestSql } from '../support/database.js';
import { startDemo, type Demo } from '../support/demo.js';
import { expectProblem, json, requestIdOf } from '../support/http.js';

/**
 * A damaged audit log (issue 25 item 2): an older event's bytes zeroed in the stored file (on the
 * PostgreSQL pass, the row overwritten) while the server is down. At the next start the server finds
 * it: /readyz is not ready and says what is wrong, CRM reads are refused with 503 AUDIT_LOG_DAMAGED,
 * and no checkpoint is signed over the damage.
 */

let demo: Demo | undefined;
afterAll(async () => {
  await demo?.stop().catch(() => undefined);
});

async function checkpointCount(dataDir: string): Promise<number> {
  const sql = await openTestSql(dataDir);
  try {
    const row = await sql.get<{ n: number }>('select count(*) as n from audit_checkpoints');
    return Number(row?.n);
  } finally {
    await sql.close();
  }
}

/** Zeroes the bytes of `needle` where the store keeps them: the page of an older event. */
async function zeroStoredBytes(dataDir: string, needle: string): Promise<void> {
  if (onPostgres) {
    const sql = await openTestSql(dataDir);
    try {
      await sql.run(
        `update audit_events set event = replace(event, $1, $2) where request_id = $1`,
        needle,
        '0'.repeat(needle.length),
      );
    } finally {
      await sql.close();
    }
    return;
  }
  const file = join(dataDir, 'audit.db');
  const bytes = readFileSync(file);
  const at = bytes.indexOf(Buffer.from(`"request_id":"${needle}"`));
  expect(at).toBeGreaterThan(0);
  bytes.fill(0, at, at + 20 + needle.length);
  writeFileSync(file, bytes);
}

describe('an audit log damaged while the server was down', () => {
  it('is found at start-up: not ready, CRM data refused with what is wrong, no checkpoint signed over it', async () => {
    demo = await startDemo({ keepDataDir: true });
    const { dataDir } = demo;
    const alice = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const first = await demo.get('/crm/v1/accounts?limit=1', alice);
    expect(first.status).toBe(200);
    const damagedRequest = requestIdOf(first);
    for (let i = 0; i < 3; i++) expect((await demo.get('/crm/v1/accounts?limit=1', alice)).status).toBe(200);
    await demo.stop();
    demo = undefined;
    const signed = await checkpointCount(dataDir);
    expect(signed).toBeGreaterThan(0);

    await zeroStoredBytes(dataDir, damagedRequest);

    demo = await startDemo({ dataDir, keepDataDir: true });
    const ready = await demo.get('/readyz');
    expect(ready.status).toBe(503);
    const report = await json<{ status: string; checks: Record<string, { ok: boolean; detail?: string }> }>(
      ready,
    );
    expect(report.status).toBe('not_ready');
    expect(report.checks.audit?.ok).toBe(false);
    expect(report.checks.audit?.detail).toMatch(/damaged/);

    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const refused = await demo.get('/crm/v1/accounts?limit=1', token);
    const problem = await expectProblem(refused, 503, 'AUDIT_LOG_DAMAGED');
    expect(problem.detail).toMatch(/index \d+/);

    // Neither the background timer nor shutdown signs over the damage.
    await demo.gatehouse.close().catch(() => undefined);
    await demo.stop().catch(() => undefined);
    demo = undefined;
    expect(await checkpointCount(dataDir)).toBe(signed);
    expect(gatehouse(['audit', 'verify', '--data-dir', dataDir]).code).not.toBe(0);
  });
});
