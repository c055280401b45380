import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSeedOwners, loadConfig, type Config } from '../../config/index.js';
import { DependencyUnavailable, PreconditionError } from '../../errors/index.js';
import { openGatehouseStore } from '../../database/index.js';
import type { Store } from '../../store/index.js';
import { seedCrm } from '../seed/seed.js';
import { createSalesforceClient, type SalesforceClientOptions } from './client.js';
import { createSalesforceCrm, type SalesforceConnector } from './connector.js';
import { startSalesforceFake, type SalesforceFake } from './fake.js';
import { createIdentityDirectory } from './identity.js';
import { soqlLiteral } from './soql.js';

/**
 * The connector against the fake org over real HTTP on loopback: what it sends (explicit fields, no
 * FIELDS(ALL), keyset by Id), queryMore, the JWT bearer grant, the org's daily allowance and failures,
 * and Salesforce's own concurrency check on writes.
 */

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
let dir: string;
let config: Config;
let store: Store;
let fake: SalesforceFake;

function clientOptions(overrides: Partial<SalesforceClientOptions> = {}): SalesforceClientOptions {
  return {
    loginUrl: fake.url,
    apiVersion: '62.0',
    clientId: 'test-app',
    username: 'integration@example.com',
    privateKey: async () => keys.privateKey,
    timeoutMs: 10_000,
    dailyReservePercent: 10,
    ...overrides,
  };
}

async function connect(overrides: Partial<SalesforceClientOptions> = {}): Promise<SalesforceConnector> {
  return createSalesforceCrm(createSalesforceClient(clientOptions(overrides)), config.crm);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-sf-'));
  config = loadConfig({ env: {}, overrides: { dataDir: dir } });
  store = await openGatehouseStore({ ...config, database: { ...config.database, url: undefined } });
  await seedCrm(store.db, { owners: demoSeedOwners(config), contacts: 600 });
  fake = await startSalesforceFake({
    db: store.db,
    clientId: 'test-app',
    username: 'integration@example.com',
    publicKey: keys.publicKey,
    users: Object.values(config.demoUsers).map((u) => ({
      email: u.email,
      ...(u.territory ? { territory: u.territory } : {}),
    })),
    batchSize: 200,
    dailyLimit: 1_000_000,
  });
});

afterAll(async () => {
  await fake?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reads', () => {
  it('selects the asked fields explicitly, keyset by Id, and follows nextRecordsUrl', async () => {
    const crm = await connect();
    const before = fake.queries.length;
    const page = await crm.query('contact', { fields: ['last_name', 'email'], where: [], limit: 450 });
    expect(page.records).toHaveLength(450);
    expect(page.nextCursor).toBeDefined();
    const ids = page.records.map((r) => String(r.id));
    expect([...ids].sort()).toEqual(ids);
    const sent = fake.queries.slice(before);
    expect(sent).toEqual([
      expect.stringMatching(/^SELECT Id, LastName, Email FROM Contact ORDER BY Id ASC LIMIT 451$/),
    ]);
    const next = await crm.query('contact', {
      fields: ['last_name'],
      where: [],
      limit: 10,
      cursor: page.nextCursor,
    });
    expect(String(next.records[0]?.id) > String(ids[449])).toBe(true);
    expect(fake.queries.at(-1)).toMatch(/WHERE \(Id > '003/);
    for (const soql of fake.queries) expect(soql).not.toMatch(/FIELDS\(/i);
  });

  it('classifies fields from describe; unmapped sensitive fields show in the survey', async () => {
    const crm = await connect();
    const nationalId = crm.describe('contact').fields.find((f) => f.name === 'national_id');
    expect(nationalId?.dataClass).toBe('pii');
    const survey = await crm.survey();
    const contact = survey.find((s) => s.object === 'contact');
    expect(contact?.fields.find((f) => f.name === 'MobilePhone')).toMatchObject({ suggested: 'pii' });
    expect(contact?.fields.find((f) => f.name === 'MobilePhone')).not.toHaveProperty('mappedTo');
    expect(contact?.fields.find((f) => f.name === 'National_Id__c')).toMatchObject({
      mappedTo: 'national_id',
      encrypted: true,
    });
  });
});

describe('identity', () => {
  it('finds the CRM user of a Gatehouse user by e-mail, with the territory the org keeps; a deactivated one drops out', async () => {
    const client = createSalesforceClient(clientOptions());
    const directory = createIdentityDirectory(client, { match: 'email', refreshSeconds: 3600 });
    try {
      await directory.refresh();
      const crm = await createSalesforceCrm(client, config.crm, directory);
      expect(crm.identity({ email: 'Alice@Example.com' })).toMatchObject({
        crmUserId: expect.stringMatching(/^005/),
        email: 'alice@example.com',
        territory: 'EMEA',
      });
      expect(crm.identity({ email: 'mallory@example.com' })).toBeUndefined();
      await sql`update fake_sf_users set is_active = 0 where email = ${'alice@example.com'}`.execute(
        store.db,
      );
      await directory.refresh();
      expect(crm.identity({ email: 'alice@example.com' })).toBeUndefined();
    } finally {
      directory.stop();
    }
  });

  it('by federation id when configured: a user without one is nobody', async () => {
    const directory = createIdentityDirectory(createSalesforceClient(clientOptions()), {
      match: 'federationIdentifier',
      refreshSeconds: 3600,
    });
    try {
      await directory.refresh();
      expect(directory.lookup({ email: 'bob@example.com' })).toBeUndefined();
      expect(directory.refreshedAt).toBeGreaterThan(0);
    } finally {
      directory.stop();
    }
  });
});

describe('authentication and the org’s limits fail closed', () => {
  it('an assertion signed with another key is refused: 503, nothing read', async () => {
    await expect(connect({ privateKey: async () => otherKeys.privateKey })).rejects.toBeInstanceOf(
      DependencyUnavailable,
    );
  });

  it('stops before the daily allowance: within the reserve, calls are refused without reaching the org', async () => {
    const crm = await connect();
    fake.setUsage(950_000);
    // This answer reports 950001/1000000: past the 90% Gatehouse may use.
    await crm.count('account');
    const usedBefore = fake.usage().used;
    await expect(crm.count('account')).rejects.toBeInstanceOf(DependencyUnavailable);
    expect(fake.usage().used).toBe(usedBefore);
    fake.setUsage(0);
  });

  it('REQUEST_LIMIT_EXCEEDED and 5xx answers are DependencyUnavailable (503)', async () => {
    const crm = await connect();
    fake.failNext(1, 503, 'SERVER_UNAVAILABLE');
    await expect(crm.count('account')).rejects.toBeInstanceOf(DependencyUnavailable);
    const limited = await connect();
    fake.failNext(1, 403, 'REQUEST_LIMIT_EXCEEDED');
    await expect(limited.count('account')).rejects.toBeInstanceOf(DependencyUnavailable);
  });
});

describe('writes', () => {
  const firstNote = async (crm: SalesforceConnector) => {
    const [note] = (await crm.query('note', { fields: ['updated_at'], where: [], limit: 1 })).records;
    return { id: String(note?.id), version: String(note?.updated_at) };
  };
  const touch = (id: string, at: string) =>
    store.db.updateTable('crm_notes').set({ updated_at: at }).where('id', '=', id).execute();

  it('an update pinned to a version that changed since finds nothing to update', async () => {
    const crm = await connect();
    const note = await firstNote(crm);
    await touch(note.id, new Date(Date.parse(note.version) + 5000).toISOString());
    const pinned = [{ field: 'updated_at', op: 'eq' as const, value: note.version }];
    expect(await crm.update('note', note.id, { body: 'x' }, pinned)).toBeUndefined();
  });

  it("a change landing between the check and the write is Salesforce's 412: a PreconditionError", async () => {
    const client = createSalesforceClient(clientOptions());
    let id = '';
    const racing: typeof client = {
      ...client,
      async update(...args) {
        await touch(id, '2099-01-01T00:00:00.000Z');
        return client.update(...args);
      },
    };
    const crm = await createSalesforceCrm(racing, config.crm);
    id = (await firstNote(crm)).id;
    await expect(crm.update('note', id, { body: 'y' }, [])).rejects.toBeInstanceOf(PreconditionError);
    const [row] = (await client.query(`SELECT Description FROM Task WHERE Id = ${soqlLiteral(id, 'id')}`))
      .records;
    expect(row?.Description).not.toBe('y');
  });
});
