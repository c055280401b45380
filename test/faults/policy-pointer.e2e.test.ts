import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPolicyDir } from '../../src/policy-library/index.js';
import { openGatehouseStore } from '../../src/database/index.js';
import { bumpControlRevision } from '../../src/store/index.js';
import { startDemo, type Demo } from '../support/demo.js';
import { json, type AuditRow } from '../support/http.js';

/**
 * The active policy version lost under a running server (issue 25 item 5; the pointer is a row in the
 * store since issue 24): the store names a version it does not hold. The last good library stays in
 * force (a denied read stays denied), the loss is audited and /readyz says `degraded`; the shipped
 * library is never put back in its place, at run time or at the next start.
 */

let demo: Demo | undefined;
afterAll(async () => {
  await demo?.stop().catch(() => undefined);
});

describe('a lost active policy version', () => {
  it('keeps the last good library in force, is audited, and reports degraded readiness', async () => {
    demo = await startDemo({ keepDataDir: true });
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const bob = await demo.accessToken('bob', 'pipeline-dashboard', 'read:account.basic');
    const exportRules = readFileSync(join(defaultPolicyDir(), 'runtime', 'export.cedar'), 'utf8').replace(
      '> 1000',
      '> 100',
    );
    const published = await demo.send('POST', '/admin/v1/policies/publish', dave, {
      // The library's own export case expects the old limit: publishing past it is forced, and audited so.
      json: {
        files: { 'runtime/export.cedar': exportRules },
        reason: 'exports above 100 need an elevation',
        force: true,
      },
    });
    expect(published.status).toBe(200);
    const { version } = await json<{ version: string }>(published);
    const policyCheck = async () =>
      (
        await json<{ checks: Record<string, { ok: boolean; degraded?: boolean; detail?: string }> }>(
          await demo!.get('/readyz'),
        )
      ).checks.policy;
    await expect
      .poll(async () => (await policyCheck())?.detail, { timeout: 10_000, interval: 200 })
      .toBe(version);
    const listBig = () => demo!.get('/crm/v1/accounts?limit=150&fields=name', bob);
    expect((await listBig()).status).toBe(403);

    // The version's row goes, and every node is told the control state moved.
    const store = await openGatehouseStore(demo.config);
    try {
      await store.db
        .deleteFrom('control_policy_versions' as never)
        .where('version' as never, '=', version as never)
        .execute();
      await bumpControlRevision(store.db);
    } finally {
      await store.close();
    }
    await expect
      .poll(async () => (await json<{ status: string }>(await demo!.get('/readyz'))).status, {
        timeout: 5000,
        interval: 200,
      })
      .toBe('degraded');

    const ready = await demo.get('/readyz');
    expect(ready.status).toBe(200);
    const check = await policyCheck();
    expect(check).toMatchObject({ ok: true, degraded: true });
    expect(check?.detail).toMatch(/missing/);
    expect(check?.detail).toContain(`version ${version} stays in force`);
    expect((await listBig()).status).toBe(403);

    const events = await json<{ records: AuditRow[] }>(
      await demo.get('/audit/v1/events?app_id=gatehouse', carol),
    );
    expect(
      events.records.some((r) => r.event.action === 'policy.load_failed' && r.event.outcome === 'error'),
    ).toBe(true);

    // The next start refuses to fall back to the shipped library.
    const { dataDir } = demo;
    await demo.stop();
    demo = undefined;
    await expect(startDemo({ dataDir, keepDataDir: true })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });
});
