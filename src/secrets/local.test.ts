import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { openLocalSecretStore, openSecretService } from './index.js';
import { masterKeyBesideData } from './key-service.js';

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-'));
  dirs.push(dir);
  return dir;
}
const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The secret service of a node on `config` (its database in the data dir). */
async function serviceOf(config: Config, env: NodeJS.ProcessEnv) {
  const store = await openGatehouseStore(config);
  stores.push(store);
  return openSecretService(config, store.db, env);
}

describe('local secret store', () => {
  it('keeps secrets encrypted at rest and reads them back; the first writer wins', async () => {
    const dir = dataDir();
    const store = openLocalSecretStore(dir, {});
    const value = Buffer.from('a private key, never in plain text on disk');
    expect(Buffer.from(await store.putIfAbsent('broker/signing-key', value))).toEqual(value);
    expect(Buffer.from(await store.putIfAbsent('broker/signing-key', Buffer.from('other')))).toEqual(value);
    expect(
      Buffer.from((await openLocalSecretStore(dir, {}).get('broker/signing-key')) as Uint8Array),
    ).toEqual(value);
    for (const file of readdirSync(join(dir, 'secrets'))) {
      expect(readFileSync(join(dir, 'secrets', file), 'utf8')).not.toContain('private key');
    }
    expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('refuses a ciphertext moved to another name (the name is authenticated)', async () => {
    const dir = dataDir();
    const store = openLocalSecretStore(dir, {});
    await store.putIfAbsent('a', Buffer.from('x'));
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, 'secrets', 'a.json'), join(dir, 'secrets', 'b.json'));
    await expect(store.get('b')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('a damaged key file (zeroed, truncated) names the secret, its file and what to do, not a JSON parse error', async () => {
    const dir = dataDir();
    const store = openLocalSecretStore(dir, {});
    await store.putIfAbsent('audit/signing-key', Buffer.from('k'));
    const file = join(dir, 'secrets', 'audit__signing-key.json');
    const { writeFileSync } = await import('node:fs');
    for (const damage of [Buffer.alloc(64), Buffer.from('{"v":1,"key":"')]) {
      writeFileSync(file, damage);
      const error = await store.get('audit/signing-key').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
      expect((error as Error).message).toContain('audit/signing-key');
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toMatch(/restore it from a backup/);
    }
  });

  it('takes the master key from GATEHOUSE_MASTER_KEY and then writes no key file', async () => {
    const dir = dataDir();
    const env = { GATEHOUSE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
    await openLocalSecretStore(dir, env).putIfAbsent('k', Buffer.from('v'));
    expect(existsSync(join(dir, 'master.key'))).toBe(false);
    expect(Buffer.from((await openLocalSecretStore(dir, env).get('k')) as Uint8Array).toString()).toBe('v');
    const otherKey = { GATEHOUSE_MASTER_KEY: Buffer.alloc(32, 8).toString('base64') };
    await expect(openLocalSecretStore(dir, otherKey).get('k')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    expect(() => openLocalSecretStore(dir, { GATEHOUSE_MASTER_KEY: 'c2hvcnQ=' })).toThrow(/32 bytes/);
  });

  it('rejects names that could escape the secrets folder', async () => {
    const store = openLocalSecretStore(dataDir(), {});
    await expect(store.get('../master')).rejects.toThrow(TypeError);
  });

  it('keeps the master key in secrets.keyService.masterKeyFile outside the data dir, and warns when it sits inside', async () => {
    const dir = dataDir();
    const keyDir = dataDir();
    const config = (masterKeyFile?: string) =>
      loadConfig({
        env: {},
        overrides: {
          demo: true,
          dataDir: dir,
          'secrets.keyService': { kind: 'local', ...(masterKeyFile ? { masterKeyFile } : {}) },
        },
      });
    const outside = await serviceOf(config(join(keyDir, 'gatehouse.key')), {});
    expect(outside.warning).toBeUndefined();
    await outside.secrets.putIfAbsent('k', Buffer.from('v'));
    expect(existsSync(join(dir, 'master.key'))).toBe(false);
    expect(statSync(join(keyDir, 'gatehouse.key')).mode & 0o777).toBe(0o600);
    expect(await outside.keys.check()).toBe(`local master key (${join(keyDir, 'gatehouse.key')})`);

    const beside = await serviceOf(config(), {});
    expect(beside.warning).toMatch(/sits inside the data dir, so a copy of the data holds its key/);
    expect(
      (await serviceOf(config(), { GATEHOUSE_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') })).warning,
    ).toBeUndefined();
    expect(masterKeyBesideData('/srv/gatehouse', '/srv/gatehouse-keys/master.key')).toBeUndefined();
    expect(masterKeyBesideData('/srv/gatehouse', '/srv/gatehouse/keys/master.key')).toBeDefined();
  });

  it('refuses a Vault credential reference unless Vault is the key service', async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        demo: true,
        dataDir: dataDir(),
        'crm.hubspot.tokenSecret': 'vault:kv/data/gatehouse/hubspot#token',
      },
    });
    await expect(serviceOf(config, {})).rejects.toThrow(/crm.hubspot.tokenSecret is a Vault reference/);
  });
});
