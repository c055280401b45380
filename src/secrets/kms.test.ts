import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { kmsTestCredentials, startKmsFake } from '../../test/support/kms.js';
import { createKmsKeyService, kmsCredentialsFromEnv } from './kms.js';
import { openLocalSecretStore } from './local.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function kms(credentials = kmsTestCredentials) {
  const fake = await startKmsFake();
  cleanups.push(() => fake.close());
  const keys = createKmsKeyService({
    region: 'eu-west-1',
    keyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
    endpoint: fake.url,
    timeoutMs: 5000,
    credentials,
  });
  cleanups.push(() => keys.close());
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-kms-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { fake, keys, dir, store: openLocalSecretStore(dir, {}, keys) };
}

describe('AWS KMS key service (JSON 1.1, SigV4) against a fake built from the KMS API reference', () => {
  it('wraps data keys with Encrypt/Decrypt, signed with SigV4, the secret’s name as EncryptionContext', async () => {
    const { fake, store, dir } = await kms();
    await store.putIfAbsent('audit/signing-key', Buffer.from('k'));
    expect(Buffer.from((await store.get('audit/signing-key'))!).toString()).toBe('k');
    const envelope = JSON.parse(readFileSync(join(dir, 'secrets', 'audit__signing-key.json'), 'utf8')) as {
      key: string;
    };
    expect(envelope.key).toMatch(/^kms:/);
    expect(fake.calls).toEqual(['TrentService.Encrypt', 'TrentService.Decrypt', 'TrentService.Decrypt']);
    expect(fake.violations).toEqual([]);
  });

  it('refuses a wrapped key moved to another name (the EncryptionContext does not match)', async () => {
    const { store, dir } = await kms();
    await store.putIfAbsent('a', Buffer.from('x'));
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, 'secrets', 'a.json'), join(dir, 'secrets', 'b.json'));
    await expect(store.get('b')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('fails closed (KEY_SERVICE_UNAVAILABLE) on throttling, a disabled key, denied access and a bad signature', async () => {
    const { fake, store } = await kms();
    await store.putIfAbsent('k', Buffer.from('v'));
    for (const type of ['ThrottlingException', 'DisabledException', 'AccessDeniedException'] as const) {
      fake.fail(type);
      const error = await store.get('k').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'KEY_SERVICE_UNAVAILABLE', status: 503 });
      expect((error as Error).message).toContain(type);
    }
    fake.recover();
    const forged = await kms({ ...kmsTestCredentials, secretAccessKey: 'not-the-key' });
    const error = await forged.keys.check().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KEY_SERVICE_UNAVAILABLE' });
    expect((error as Error).message).toContain('InvalidSignatureException');
    expect((error as Error).message).not.toContain('not-the-key');
  });

  it('takes credentials from the AWS_* environment and refuses to start without them', () => {
    expect(
      kmsCredentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_SESSION_TOKEN: 'c' }),
    ).toEqual({ accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 'c' });
    expect(() => kmsCredentialsFromEnv({})).toThrow(/AWS_ACCESS_KEY_ID/);
  });
});
