import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openGatehouseStore } from '../src/database/index.js';
import { gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import { expectProblem, json } from './support/http.js';
import { startVaultFake, type VaultFake } from './support/vault.js';

const hubspotToken = 'pat-eu1-from-vault-kv';

/** The fake-backed Vault of these tests: AppRole login, Transit key `gatehouse`, the secret id in a file. */
async function vaultSetup(
  scratch: string,
): Promise<{ fake: VaultFake; keyService: Record<string, unknown> }> {
  const fake = await startVaultFake({ approle: { roleId: 'gatehouse-node', secretId: 's3cr3t-id' } });
  const secretIdFile = join(scratch, 'approle-secret-id');
  writeFileSync(secretIdFile, 's3cr3t-id\n', { mode: 0o600 });
  return {
    fake,
    keyService: {
      kind: 'vault',
      url: fake.url,
      transitKey: 'gatehouse',
      auth: { approle: { roleId: 'gatehouse-node', secretIdFile } },
      kvMount: 'kv',
    },
  };
}

describe('keys outside the data: Vault as the key service', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  let fake: VaultFake;
  let keyService: Record<string, unknown>;
  let demo: Demo;
  let alice: string;

  beforeAll(async () => {
    ({ fake, keyService } = await vaultSetup(scratch));
    // The HubSpot private-app token lives only in Vault KV v2; the node reads it at run time.
    fake.writeKv('kv', 'gatehouse/hubspot', { token: hubspotToken });
    demo = await startDemo({
      crm: 'hubspot',
      config: {
        'secrets.keyService': keyService,
        'crm.hubspot.tokenSecret': 'vault:kv/data/gatehouse/hubspot#token',
      },
    });
    alice = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
  });
  afterAll(async () => {
    await demo?.stop();
    await fake?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('every stored secret is wrapped by Vault Transit; no master key, no connector credential in the data dir', async () => {
    expect(readdirSync(demo.dataDir)).not.toContain('master.key');
    // Secrets live in the database: every envelope's data key is wrapped by Vault Transit.
    const store = await openGatehouseStore(demo.config);
    try {
      const rows = await sql<{ name: string; envelope: string | null }>`
        select name, envelope from secrets`.execute(store.db);
      expect(rows.rows.length).toBeGreaterThan(0);
      for (const row of rows.rows) {
        if (row.envelope === null) continue;
        expect((JSON.parse(row.envelope) as { key: string }).key).toMatch(/^vault:v1:/);
        expect(row.name).not.toMatch(/hubspot/);
      }
    } finally {
      await store.close();
    }
    const bytes = readdirSync(demo.dataDir, { recursive: true })
      .map((entry) => join(demo.dataDir, String(entry)))
      .filter((path) => !path.includes('hubspot-fake'))
      .flatMap((path) => {
        try {
          return [readFileSync(path)];
        } catch {
          return [];
        }
      });
    for (const content of bytes) expect(content.includes(hubspotToken)).toBe(false);
    expect(fake.violations).toEqual([]);
  });

  it('/readyz names the key service; a sealed Vault makes it not ready, saying so', async () => {
    const ready = await json<{ checks: Record<string, { ok: boolean; detail?: string }> }>(
      await demo.get('/readyz'),
    );
    expect(ready.checks.keys).toMatchObject({ ok: true });
    expect(JSON.stringify(ready.checks.keys)).toMatch(
      /vault http:\/\/127\.0\.0\.1:\d+ transit key gatehouse/,
    );
    fake.seal();
    try {
      const response = await demo.get('/readyz');
      expect(response.status).toBe(503);
      expect(JSON.stringify(await response.json())).toContain('Vault is sealed');
    } finally {
      fake.unseal();
    }
  });

  it('a request that needs the key service while Vault is sealed is refused 503 KEY_SERVICE_UNAVAILABLE, and served again once unsealed', async () => {
    expect((await demo.get('/crm/v1/accounts?limit=2&fields=name', alice)).status).toBe(200);
    fake.seal();
    try {
      const refused = await expectProblem(
        await demo.get('/crm/v1/accounts?limit=2&fields=name', alice),
        503,
        'KEY_SERVICE_UNAVAILABLE',
      );
      expect(refused.detail).toContain('Vault is sealed');
      expect(JSON.stringify(refused)).not.toContain(hubspotToken);
    } finally {
      fake.unseal();
    }
    expect((await demo.get('/crm/v1/accounts?limit=2&fields=name', alice)).status).toBe(200);
    expect(fake.calls).toContain('GET /v1/kv/data/gatehouse/hubspot');
    expect(fake.violations).toEqual([]);
  });

  it('a node whose Vault is sealed does not start: one line naming Vault and why, non-zero exit', async () => {
    const sealed = await vaultSetup(scratch);
    sealed.fake.seal();
    try {
      const file = join(scratch, 'sealed.json');
      writeFileSync(file, JSON.stringify({ secrets: { keyService: sealed.keyService } }));
      const result = await gatehouseAsync([
        'serve',
        '--demo',
        '--port',
        '0',
        '--config',
        file,
        '--data-dir',
        join(scratch, 'sealed-node'),
      ]);
      expect(result.code).not.toBe(0);
      const lines = result.stderr.trim().split('\n');
      expect(lines.at(-1)).toMatch(
        /^gatehouse: cannot start: key service \(vault\): Vault is sealed \(HTTP 503\) \[KEY_SERVICE_UNAVAILABLE\]$/,
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stderr).not.toContain('s3cr3t-id');
    } finally {
      await sealed.fake.close();
    }
  });
});
