import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSeedOwners, loadConfig } from '../src/config/index.js';
import { seedCrm } from '../src/crm/index.js';
import { startSalesforceFake, type SalesforceFake } from '../src/crm/salesforce/index.js';
import { openLocalSecretStore } from '../src/secrets/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, requestIdOf } from './support/http.js';

/**
 * The gateway in front of a Salesforce org that fails, over real HTTP: a failing org and one past its API
 * limit are each refused with a 503 problem that is audited, and no
 * record leaves. The org is the fake, configured as a real one would be (connected app, key in the
 * secret store).
 */

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const orgDir = mkdtempSync(join(tmpdir(), 'gatehouse-sf-org-'));
const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
/** The deployment's configuration as its operator's CLI reads it: the same org as the server's. */
const configFile = join(orgDir, 'gatehouse.json');
let org: Store;
let fake: SalesforceFake;
let demo: Demo;
let alice: string;
let carol: string;

beforeAll(async () => {
  const orgConfig = loadConfig({ env: {}, overrides: { dataDir: orgDir } });
  org = await openGatehouseStore({ ...orgConfig, database: { ...orgConfig.database, url: undefined } });
  await seedCrm(org.db, { owners: demoSeedOwners(orgConfig), contacts: 300 });
  fake = await startSalesforceFake({
    db: org.db,
    clientId: 'acme-gatehouse',
    username: 'integration@acme.example',
    publicKey: keys.publicKey,
    users: Object.values(orgConfig.demoUsers).map((u) => ({ email: u.email })),
    dailyLimit: 1_000_000,
  });
  await openLocalSecretStore(dataDir).putIfAbsent(
    'crm/salesforce/private-key',
    Buffer.from(keys.privateKey.export({ type: 'pkcs8', format: 'pem' })),
  );
  writeFileSync(
    configFile,
    JSON.stringify({
      crm: {
        kind: 'salesforce',
        salesforce: { loginUrl: fake.url, clientId: 'acme-gatehouse', username: 'integration@acme.example' },
      },
    }),
  );
  demo = await startDemo({
    dataDir,
    crm: 'salesforce',
    config: {
      'crm.salesforce.loginUrl': fake.url,
      'crm.salesforce.clientId': 'acme-gatehouse',
      'crm.salesforce.username': 'integration@acme.example',
      // The breaker stays closed over these few failures: each answer is the connector's own.
      'limits.breaker': { failureThreshold: 100 },
    },
  });
  [alice, carol] = await Promise.all([
    demo.accessToken('alice', 'call-notes', 'read:account.basic'),
    demo.accessToken('carol', 'console', 'audit:read'),
  ]);
});

afterAll(async () => {
  await demo?.stop();
  await fake?.close();
  await org?.close();
  rmSync(orgDir, { recursive: true, force: true });
});

describe('a Salesforce org that cannot answer is refused, audited, and shows nothing', () => {
  it('reads through the configured connected app while the org is well', async () => {
    const response = await demo.get('/crm/v1/accounts?limit=2&fields=territory', alice);
    expect(response.status).toBe(200);
  });

  it.each([
    [503, 'SERVER_UNAVAILABLE'],
    [500, 'UNKNOWN_EXCEPTION'],
  ])('%s %s: 503 DEPENDENCY_UNAVAILABLE, recorded as an error', async (status, errorCode) => {
    fake.failNext(1, status, errorCode);
    const response = await demo.get('/crm/v1/accounts?limit=2', alice);
    const problem = await expectProblem(response, 503, 'DEPENDENCY_UNAVAILABLE');
    expect(problem).not.toHaveProperty('records');
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event).toMatchObject({ action: 'crm.list', outcome: 'error' });
    expect(JSON.stringify(row?.event)).not.toMatch(/Bearer|00D000000000001!/);
  });

  it('REQUEST_LIMIT_EXCEEDED: 503, and the gateway backs off: the next request does not reach the org', async () => {
    fake.failNext(1, 403, 'REQUEST_LIMIT_EXCEEDED');
    await expectProblem(await demo.get('/crm/v1/accounts?limit=2', alice), 503, 'DEPENDENCY_UNAVAILABLE');
    const used = fake.usage().used;
    const again = await demo.get('/crm/v1/accounts?limit=2', alice);
    await expectProblem(again, 503, 'DEPENDENCY_UNAVAILABLE');
    expect(fake.usage().used).toBe(used);
  });
});

describe("the CLI's local commands read the configured org, not the embedded CRM", () => {
  const cli = (...args: string[]) => gatehouseAsync([...args, '--data-dir', dataDir, '--config', configFile]);

  it('dsr create finds a subject only the org holds', async () => {
    const email = 'only.in.the.org@example.com';
    await org.db
      .updateTable('crm_contacts')
      .set({ email })
      .where(
        'id',
        '=',
        (await org.db.selectFrom('crm_contacts').select('id').limit(1).executeTakeFirstOrThrow()).id,
      )
      .execute();
    const result = await cli('dsr', 'create', '--kind', 'access', '--email', email, '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ kind: 'access' });
  });

  it('classify samples the org', async () => {
    const used = fake.usage().used;
    const result = await cli('classify', '--object', 'contact', '--sample-size', '5', '--json');
    expect(result.code, result.stderr).toBe(0);
    expect(fake.usage().used).toBeGreaterThan(used);
  });
});
