import { rmSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { openTestSql } from './support/database.js';
import { startDemo } from './support/demo.js';

let dataDir = '';
afterAll(() => {
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('a demo data dir across restarts and commands', () => {
  it('keeps CRM data, apps and the audit log when started again, and the CLI works on it', async () => {
    const first = await startDemo({ keepDataDir: true });
    dataDir = first.dataDir;
    const token = await first.accessToken('alice', 'call-notes', 'read:account.basic');
    const before = (await (await first.get('/crm/v1/accounts?limit=3', token)).json()) as {
      records: unknown[];
    };
    await first.stop();

    const second = await startDemo({ dataDir, keepDataDir: true });
    const again = await second.accessToken('alice', 'call-notes', 'read:account.basic');
    const after = (await (await second.get('/crm/v1/accounts?limit=3', again)).json()) as {
      records: unknown[];
    };
    expect(after.records).toEqual(before.records);

    const idToken = gatehouse(['dev', 'id-token', '--user', 'bob', '--data-dir', dataDir]);
    expect(idToken.code).toBe(0);
    expect(decodeJwt(idToken.stdout.trim())).toMatchObject({ sub: 'bob', email: 'bob@example.com' });
    const unknown = gatehouse(['dev', 'id-token', '--user', 'mallory', '--data-dir', dataDir]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('USER_UNKNOWN');

    const apps = gatehouse(['app', 'list', '--json', '--data-dir', dataDir]);
    expect(JSON.parse(apps.stdout).records.map((a: { id: string }) => a.id)).toEqual([
      'call-notes',
      'console',
      'pipeline-dashboard',
    ]);
    await second.stop();
  });

  it('audit verify passes on the intact log and names the first bad index after tampering', async () => {
    const intact = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(intact.code).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true });

    const db = await openTestSql(dataDir);
    const row = (await db.get<{ idx: number; event: string }>(
      'select idx, event from audit_events where idx = 1',
    )) as { idx: number; event: string };
    await db.run('update audit_events set event = ? where idx = 1', row.event.replace('"allow"', '"deny"'));
    await db.close();

    const tampered = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(tampered.code).not.toBe(0);
    expect(JSON.parse(tampered.stdout)).toMatchObject({ ok: false, firstBadIndex: 1 });
  });
});
