import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import type { AccessTokenClaims } from './access-token.js';
import { recordRevocation, revokeAll, RevocationList } from './revocation.js';
import { rememberSubject } from './subjects.js';
import { brokerDb } from './tables.js';
import { testDatabase } from '../../test/support/database.js';

let dataDir: string;
let config: Config;
let store: Store;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-'));
  config = loadConfig({
    env: {},
    overrides: { dataDir, logLevel: 'silent', ...(await testDatabase(dataDir)) },
  });
  store = await openGatehouseStore(config);
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: Partial<AccessTokenClaims> = {}): AccessTokenClaims => ({
  iss: 'http://gatehouse',
  aud: 'gatehouse-gateway',
  sub: 'alice',
  email: 'alice@example.com',
  client_id: 'call-notes',
  app_id: 'call-notes',
  scope: 'read:account.basic',
  role: 'sales_rep',
  jti: `j-${Math.random()}`,
  iat: now() - 10,
  exp: now() + 300,
  ...overrides,
});

describe('RevocationList', () => {
  it('sees revocations written through another handle, by jti, family, app, user and app+user', async () => {
    const list = new RevocationList(brokerDb(store.db), { pollMs: 50, maxStalenessMs: 5000 });
    await list.ready();
    const other = await openGatehouseStore(config);
    try {
      await recordRevocation(brokerDb(other.db), {
        kind: 'jti',
        value: 'j1',
        expiresAt: now() + 60,
        reason: 't',
        now: now(),
      });
      await recordRevocation(brokerDb(other.db), {
        kind: 'family',
        value: 'f1',
        expiresAt: now() + 60,
        reason: 't',
        now: now(),
      });
      await revokeAll(other.db, { appId: 'app-x', reason: 'containment' });
      await revokeAll(other.db, { userId: 'bob@example.com', reason: 'offboarding' });
      await revokeAll(other.db, { appId: 'app-y', userId: 'carol', reason: 'one user in one app' });
    } finally {
      await other.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
    const revoked = (c: AccessTokenClaims) =>
      expect(() => list.check(c)).toThrow(expect.objectContaining({ code: 'TOKEN_REVOKED' }));
    revoked(claims({ jti: 'j1' }));
    revoked(claims({ sid: 'f1' }));
    revoked(claims({ app_id: 'app-x' }));
    revoked(claims({ sub: 'bob', email: 'bob@example.com' }));
    revoked(claims({ sub: 'carol', app_id: 'app-y' }));
    list.check(claims());
    list.check(claims({ sub: 'carol', app_id: 'app-z' }));
    // Tokens issued after the node read the revocation (a later epoch) are not covered.
    list.check(claims({ app_id: 'app-x', rev: list.epoch }));
    list.close();
  });

  it('compares access tokens by revocation epoch, not by the clocks of the nodes (a fast clock gains nothing)', async () => {
    const list = new RevocationList(brokerDb(store.db), { pollMs: 50, maxStalenessMs: 5000 });
    await list.ready();
    const before = list.epoch;
    await revokeAll(store.db, { userId: 'skew@example.com', reason: 'containment', incident: 'inc_skew' });
    await list.sync();
    // Issued by a node whose clock runs an hour ahead, before it had read the revocation.
    const ahead = claims({ sub: 'skew', email: 'skew@example.com', iat: now() + 3600, rev: before });
    expect(() => list.check(ahead)).toThrow(
      expect.objectContaining({ code: 'TOKEN_REVOKED', extensions: { incident: 'inc_skew' } }),
    );
    // Issued by a node whose clock runs behind, after it had read it: a new sign-in, not covered.
    list.check(claims({ sub: 'skew', email: 'skew@example.com', iat: now() - 3600, rev: list.epoch }));
    list.close();
  });

  it('matches a user by the normalised e-mail and by sub, whatever the case of either revocation or token', async () => {
    const list = new RevocationList(brokerDb(store.db), { pollMs: 50, maxStalenessMs: 5000 });
    await list.ready();
    const before = list.epoch;
    await revokeAll(store.db, { userId: ' Carl.Case@Example.COM ', reason: 'offboarding', permanent: true });
    await list.sync();
    expect(() => list.check(claims({ sub: 'carl', email: 'carl.case@example.com', rev: before }))).toThrow(
      expect.objectContaining({ code: 'TOKEN_REVOKED' }),
    );
    expect(() =>
      list.checkSubject({ sub: 'carl', email: 'CARL.case@example.com', authTime: now() + 60 }, 'any'),
    ).toThrow(expect.objectContaining({ code: 'OAUTH_INVALID_GRANT' }));
    list.close();
  });

  it('keys a user on (issuer, sub): offboarding by e-mail refuses each subject seen with it, whatever e-mail comes later', async () => {
    const idp = 'https://idp.example.com';
    const list = new RevocationList(brokerDb(store.db), { pollMs: 50, maxStalenessMs: 5000 });
    await list.ready();
    const before = list.epoch;
    await rememberSubject(
      brokerDb(store.db),
      { issuer: idp, sub: 'dana', email: 'Dana@Example.com', role: 'r' },
      now(),
    );
    await revokeAll(store.db, { userId: 'dana@example.com', reason: 'offboarding', permanent: true });
    await list.sync();
    // The IdP no longer sends her e-mail, or sends another: her (issuer, sub) is still refused.
    expect(() => list.checkSubject({ issuer: idp, sub: 'dana', authTime: now() + 60 }, 'any')).toThrow(
      expect.objectContaining({ code: 'OAUTH_INVALID_GRANT' }),
    );
    expect(() =>
      list.check(claims({ sub: 'dana', idp, email: 'dana.renamed@example.com', rev: before })),
    ).toThrow(expect.objectContaining({ code: 'TOKEN_REVOKED' }));
    // The same `sub` at another IdP is someone else.
    list.checkSubject({ issuer: 'https://other-idp.example.com', sub: 'dana', authTime: now() + 60 }, 'any');

    // A `sub` named by an admin is revoked with its issuer, never across IdPs.
    await revokeAll(store.db, { userId: 'erik', issuer: idp, reason: 'containment' });
    await list.sync();
    expect(() => list.checkSubject({ issuer: idp, sub: 'erik', authTime: now() - 5 }, 'any')).toThrow(
      expect.objectContaining({ code: 'OAUTH_INVALID_GRANT' }),
    );
    list.checkSubject({ issuer: 'https://other-idp.example.com', sub: 'erik', authTime: now() - 5 }, 'any');
    list.close();
  });

  it('retries a failed first read: 503 while the list is unknown, then it works without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-first-'));
    const late = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: dir, logLevel: 'silent', ...(await testDatabase(dir)) } }),
    );
    const db = brokerDb(late.db);
    // The table is missing at first, as when the database is not reachable or not migrated yet.
    await db.schema.alterTable('token_revocations').renameTo('token_revocations_away').execute();
    const list = new RevocationList(db, { pollMs: 50, maxStalenessMs: 5000 });
    await expect(list.ready()).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(() => list.check(claims())).toThrow(expect.objectContaining({ code: 'DEPENDENCY_UNAVAILABLE' }));
    expect(list.status().ok).toBe(false);
    await db.schema.alterTable('token_revocations_away').renameTo('token_revocations').execute();
    // The list's own polling finds the table again; no restart, no call from here.
    await vi.waitFor(() => expect(list.status().ok).toBe(true), { timeout: 10_000, interval: 50 });
    await list.ready();
    list.check(claims());
    list.close();
    await late.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails closed when revocations cannot be read for longer than the staleness limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-stale-'));
    const doomed = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: dir, logLevel: 'silent', ...(await testDatabase(dir)) } }),
    );
    const list = new RevocationList(brokerDb(doomed.db), { pollMs: 50, maxStalenessMs: 200 });
    await list.ready();
    list.check(claims());
    await doomed.close();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(() => list.check(claims())).toThrow(expect.objectContaining({ code: 'DEPENDENCY_UNAVAILABLE' }));
    list.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('revokeAll is a caller mistake without a target or a reason', async () => {
    await expect(revokeAll(store.db, { reason: 'x' })).rejects.toBeInstanceOf(TypeError);
    await expect(revokeAll(store.db, { appId: 'a', reason: '' })).rejects.toBeInstanceOf(TypeError);
  });
});
