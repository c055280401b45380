import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startVaultFake, type VaultFake } from '../../test/support/vault.js';
import { openLocalSecretStore } from './local.js';
import { createVaultKeyService, parseReference, type VaultOptions } from './vault.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-vault-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function vaultWithAppRole(options: { ttl?: number } = {}) {
  const fake = await startVaultFake({
    approle: { roleId: 'role-1', secretId: 'secret-1' },
    tokenTtlSeconds: options.ttl ?? 3600,
  });
  cleanups.push(() => fake.close());
  const dir = tempDir();
  writeFileSync(join(dir, 'secret-id'), 'secret-1\n');
  const clock = { now: 1_000_000 };
  const settings: VaultOptions = {
    url: fake.url,
    transitMount: 'transit',
    transitKey: 'gatehouse',
    auth: { approle: { roleId: 'role-1', secretIdFile: join(dir, 'secret-id'), mount: 'approle' } },
    kvMount: 'secret',
    timeoutMs: 5000,
    now: () => clock.now,
  };
  const keys = createVaultKeyService(settings);
  cleanups.push(() => keys.close());
  return { fake, keys, clock, dir, settings };
}

function expectContractKept(fake: VaultFake): void {
  expect(fake.violations).toEqual([]);
}

describe('Vault key service (Transit, AppRole, KV v2) against a fake built from Vault’s HTTP API', () => {
  it('wraps each data key with Transit under the secret’s name as context; the store keeps only vault:v1 ciphertexts', async () => {
    const { fake, keys } = await vaultWithAppRole();
    const dir = tempDir();
    const store = openLocalSecretStore(dir, {}, keys);
    await store.putIfAbsent('broker/signing-key', Buffer.from('a private key'));
    expect(Buffer.from((await store.get('broker/signing-key'))!).toString()).toBe('a private key');
    const envelope = JSON.parse(
      (await import('node:fs')).readFileSync(join(dir, 'secrets', 'broker__signing-key.json'), 'utf8'),
    ) as { key: string };
    expect(envelope.key).toMatch(/^vault:v1:/);
    expect(fake.calls).toEqual([
      'POST /v1/auth/approle/login',
      'POST /v1/transit/encrypt/gatehouse',
      'POST /v1/transit/decrypt/gatehouse',
      'POST /v1/transit/decrypt/gatehouse',
    ]);
    expectContractKept(fake);
  });

  it('refuses a wrapped key moved to another secret’s name (Transit context is the name)', async () => {
    const { fake, keys } = await vaultWithAppRole();
    const dir = tempDir();
    const store = openLocalSecretStore(dir, {}, keys);
    await store.putIfAbsent('a', Buffer.from('x'));
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, 'secrets', 'a.json'), join(dir, 'secrets', 'b.json'));
    await expect(store.get('b')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expectContractKept(fake);
  });

  it('renews its token (renew-self) two thirds into the lease, and logs in again once renewal is refused', async () => {
    const { fake, keys, clock } = await vaultWithAppRole({ ttl: 60 });
    await keys.check();
    clock.now += 41_000;
    await keys.check();
    expect(fake.calls.filter((c) => c.includes('/auth/'))).toEqual([
      'POST /v1/auth/approle/login',
      'POST /v1/auth/token/renew-self',
    ]);
    fake.refuseRenewals();
    clock.now += 41_000;
    await keys.check();
    expect(fake.calls.filter((c) => c.includes('/auth/')).slice(2)).toEqual([
      'POST /v1/auth/token/renew-self',
      'POST /v1/auth/approle/login',
    ]);
    expectContractKept(fake);
  });

  it('logs in again when Vault no longer honours its token (expired lease) and carries on', async () => {
    const { fake, keys } = await vaultWithAppRole();
    await keys.check();
    fake.expireTokens();
    await expect(keys.check()).resolves.toMatch(/^vault http:\/\/127\.0\.0\.1:\d+ transit key gatehouse/);
    expect(fake.calls.filter((c) => c.includes('login'))).toHaveLength(2);
    expectContractKept(fake);
  });

  it('fails closed with KEY_SERVICE_UNAVAILABLE when Vault is sealed, throttles or denies', async () => {
    const { fake, keys } = await vaultWithAppRole();
    const store = openLocalSecretStore(tempDir(), {}, keys);
    await store.putIfAbsent('k', Buffer.from('v'));

    fake.seal();
    const sealed = await store.get('k').catch((e: unknown) => e);
    expect(sealed).toMatchObject({ code: 'KEY_SERVICE_UNAVAILABLE', status: 503 });
    expect((sealed as Error).message).toContain('Vault is sealed');
    fake.unseal();

    fake.throttle(1);
    await expect(store.get('k')).rejects.toMatchObject({
      code: 'KEY_SERVICE_UNAVAILABLE',
      retryAfterSeconds: 2,
    });

    fake.denyTransit();
    const denied = await store.get('k').catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: 'KEY_SERVICE_UNAVAILABLE' });
    expect((denied as Error).message).toMatch(/permission denied for transit\/decrypt\/gatehouse/);
    expectContractKept(fake);
  });

  it('refuses to answer when the AppRole login is refused (a wrong secret id), naming the login', async () => {
    const { fake, settings, dir } = await vaultWithAppRole();
    writeFileSync(join(dir, 'secret-id'), 'not-the-secret');
    const keys = createVaultKeyService(settings);
    cleanups.push(() => keys.close());
    const error = await keys.check().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KEY_SERVICE_UNAVAILABLE' });
    expect((error as Error).message).toMatch(
      /login at auth\/approle\/login was refused: invalid role or secret ID/,
    );
    expect((error as Error).message).not.toContain('not-the-secret');
    expectContractKept(fake);
  });

  it('logs in with the Kubernetes service account token', async () => {
    const fake = await startVaultFake({ kubernetes: { role: 'gatehouse', jwt: 'eyJ.sa.token' } });
    cleanups.push(() => fake.close());
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), 'eyJ.sa.token');
    const keys = createVaultKeyService({
      url: fake.url,
      transitMount: 'transit',
      transitKey: 'gatehouse',
      auth: { kubernetes: { role: 'gatehouse', jwtFile: join(dir, 'token'), mount: 'kubernetes' } },
      kvMount: 'secret',
      timeoutMs: 5000,
    });
    cleanups.push(() => keys.close());
    await keys.check();
    expect(fake.calls[0]).toBe('POST /v1/auth/kubernetes/login');
    expectContractKept(fake);
  });

  it('reads a KV v2 field by reference, with or without the mount in it', async () => {
    const { fake, keys } = await vaultWithAppRole();
    fake.writeKv('kv', 'gatehouse/hubspot', { token: 'pat-from-vault' });
    fake.writeKv('secret', 'gatehouse/hubspot', { token: 'pat-default-mount' });
    expect(Buffer.from((await keys.readReference('vault:kv/data/gatehouse/hubspot#token'))!).toString()).toBe(
      'pat-from-vault',
    );
    expect(Buffer.from((await keys.readReference('vault:gatehouse/hubspot#token'))!).toString()).toBe(
      'pat-default-mount',
    );
    expect(await keys.readReference('vault:kv/data/gatehouse/hubspot#other')).toBeUndefined();
    expect(await keys.readReference('vault:kv/data/gatehouse/none#token')).toBeUndefined();
    expect(fake.calls).toContain('GET /v1/kv/data/gatehouse/hubspot');
    expectContractKept(fake);
  });

  it('rejects references that could leave the KV path', () => {
    expect(() => parseReference('vault:kv/data/../sys/seal#x', 'secret')).toThrow(TypeError);
    expect(() => parseReference('vault:kv/data/a', 'secret')).toThrow(TypeError);
  });
});
