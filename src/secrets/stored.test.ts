import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { dropTestDatabase, testDatabase } from '../../test/support/database.js';
import { importSecretFiles, openLocalSecretStore, openSecretStore } from './index.js';
import { createLocalKeyService, loadMasterKey } from './key-service.js';

/** The local key service of a data dir (its master.key, or GATEHOUSE_MASTER_KEY from `env`). */
function localKeys(dir: string, env: NodeJS.ProcessEnv = {}) {
  const { key, source } = loadMasterKey(join(dir, 'master.key'), env.GATEHOUSE_MASTER_KEY);
  return createLocalKeyService(key, source);
}

const opened: Array<{ dir: string; store: Store }> = [];
async function dataDir(): Promise<{ dir: string; store: Store }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-stored-secrets-'));
  const store = await openGatehouseStore(
    loadConfig({ env: {}, overrides: { dataDir: dir, ...(await testDatabase(dir)) } }),
  );
  opened.push({ dir, store });
  return { dir, store };
}
afterEach(async () => {
  for (const { dir, store } of opened.splice(0)) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(dir);
  }
});

describe('secrets in the database', () => {
  it('keep only sealed envelopes there, the first writer wins, and a delete keeps the history', async () => {
    const { dir, store } = await dataDir();
    const secrets = await openSecretStore(store.db, dir, localKeys(dir));
    const value = Buffer.from('a private key, never in plain text in the database');
    expect(Buffer.from(await secrets.putIfAbsent('broker/signing-key', value))).toEqual(value);
    expect(Buffer.from(await secrets.putIfAbsent('broker/signing-key', Buffer.from('other')))).toEqual(value);
    const rows = await sql<{ envelope: string | null }>`select envelope from secrets`.execute(store.db);
    expect(JSON.stringify(rows.rows)).not.toContain('private key');

    await secrets.delete('broker/signing-key');
    expect(await secrets.get('broker/signing-key')).toBeUndefined();
    expect(await secrets.list('broker/')).toEqual([]);
    const again = Buffer.from('a new one');
    expect(Buffer.from(await secrets.putIfAbsent('broker/signing-key', again))).toEqual(again);
    const versions = await sql<{ version: number; tombstone: number }>`
      select version, case when envelope is null then 1 else 0 end as tombstone from secrets order by version`.execute(
      store.db,
    );
    expect(versions.rows.map((r) => [Number(r.version), Number(r.tombstone)])).toEqual([
      [1, 0],
      [2, 1],
      [3, 0],
    ]);
  });

  it('are readable by another data dir with the same master key, and by none without it', async () => {
    const { dir, store } = await dataDir();
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    await (
      await openSecretStore(store.db, dir, localKeys(dir, { GATEHOUSE_MASTER_KEY: masterKey }))
    ).putIfAbsent('gateway/cursor-key', Buffer.from('shared'));
    const other = mkdtempSync(join(tmpdir(), 'gatehouse-stored-secrets-'));
    try {
      const sameKey = await openSecretStore(
        store.db,
        other,
        localKeys(other, { GATEHOUSE_MASTER_KEY: masterKey }),
      );
      expect(Buffer.from((await sameKey.get('gateway/cursor-key')) as Uint8Array).toString()).toBe('shared');
      const ownKey = await openSecretStore(store.db, other, localKeys(other));
      await expect(ownKey.get('gateway/cursor-key')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("import a data dir's secret files once: idempotent, and a deleted secret stays deleted", async () => {
    const { dir, store } = await dataDir();
    const files = openLocalSecretStore(dir, {});
    await files.putIfAbsent('broker/signing-key', Buffer.from('from before'));
    await files.putIfAbsent('audit/checkpoint-key', Buffer.from('checkpoints'));
    expect(await importSecretFiles(store.db, dir)).toEqual(['audit/checkpoint-key', 'broker/signing-key']);
    expect(await importSecretFiles(store.db, dir)).toEqual([]);

    const secrets = await openSecretStore(store.db, dir, localKeys(dir));
    expect(Buffer.from((await secrets.get('broker/signing-key')) as Uint8Array).toString()).toBe(
      'from before',
    );
    await secrets.delete('audit/checkpoint-key');
    // The file is still there; importing again must not bring the secret back.
    expect(readFileSync(join(dir, 'secrets', 'audit__checkpoint-key.json'), 'utf8')).toContain('"v":1');
    expect(await importSecretFiles(store.db, dir)).toEqual([]);
    expect(
      await (await openSecretStore(store.db, dir, localKeys(dir))).get('audit/checkpoint-key'),
    ).toBeUndefined();
  });
});
