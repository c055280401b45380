import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openLocalSecretStore, type SecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { maxTokenLifetimeSeconds, openKeyRing } from './keys.js';
import { brokerDb } from './tables.js';
import { testDatabase } from '../../test/support/database.js';

let dataDir: string;
let store: Store;
let secrets: SecretStore;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  store = await openGatehouseStore(
    loadConfig({ env: {}, overrides: { dataDir, logLevel: 'silent', ...(await testDatabase(dataDir)) } }),
  );
  secrets = openLocalSecretStore(dataDir);
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const ring = () =>
  openKeyRing({ db: brokerDb(store.db), secrets, publishLeadSeconds: 600, rotationDays: 30 });

describe('signing key rotation', () => {
  it('publishes a new key before it signs, and keeps the old one until its tokens have expired', async () => {
    const keys = await ring();
    const t0 = Math.floor(Date.now() / 1000);
    const first = keys.signingKey(t0);
    expect(keys.jwks(t0).keys.map((k) => k.kid)).toEqual([first.kid]);

    const next = await keys.rotate(t0);
    // Published at once, but not signing during the lead time.
    expect(keys.jwks(t0).keys.map((k) => k.kid)).toEqual([first.kid, next.kid]);
    expect(keys.signingKey(t0).kid).toBe(first.kid);
    expect(keys.signingKey(t0 + 599).kid).toBe(first.kid);
    expect(keys.signingKey(t0 + 600).kid).toBe(next.kid);

    // A token the old key signed just before the switch verifies until the old key retires.
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: first.kid })
      .sign(first.privateKey);
    const retire = t0 + 600 + maxTokenLifetimeSeconds;
    const oldKey = keys.verificationKey(first.kid, retire - 1);
    expect(oldKey).toBeDefined();
    await expect(jwtVerify(token, oldKey!)).resolves.toBeTruthy();
    expect(keys.verificationKey(first.kid, retire)).toBeUndefined();
    expect(keys.jwks(retire).keys.map((k) => k.kid)).toEqual([next.kid]);
  });

  it('another node sees the rotation after reload, and kid is only a lookup key', async () => {
    const other = await ring();
    const t = Math.floor(Date.now() / 1000);
    expect(other.jwks(t).keys.length).toBe(2);
    for (const kid of ['../../master.key', '__proto__', 'constructor', 42, undefined]) {
      expect(other.verificationKey(kid, t)).toBeUndefined();
    }
  });

  it('rotates on schedule only when the newest key is old enough', async () => {
    const keys = await ring();
    const t = Math.floor(Date.now() / 1000);
    expect(await keys.rotateIfDue(t + 700)).toBe(false);
    expect(await keys.rotateIfDue(t + 31 * 86_400)).toBe(true);
    expect(keys.jwks(t + 31 * 86_400).keys.length).toBeGreaterThanOrEqual(2);
  });

  it('never stores a private key in the database', async () => {
    const rows = await brokerDb(store.db).selectFrom('broker_keys').selectAll().execute();
    expect(JSON.stringify(rows)).not.toMatch(/"d"/);
  });
});

describe('rotateSigningKey (the CLI, no server)', () => {
  it('adds a published key that another ring on the same store sees', async () => {
    const { rotateSigningKey } = await import('./keys.js');
    const kid = await rotateSigningKey({ db: store.db, secrets, publishLeadSeconds: 0 });
    const keys = await ring();
    const t = Math.floor(Date.now() / 1000);
    expect(keys.jwks(t).keys.map((k) => k.kid)).toContain(kid);
    expect(keys.signingKey(t).kid).toBe(kid);
  });
});
