import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSeedOwners } from '../src/config/index.js';
import {
  createEmbeddedCrm,
  createHubSpotConnector,
  seedHubSpotFake,
  startHubSpotFake,
  type CrmConnector,
  type HubSpotConnector,
  type HubSpotFake,
} from '../src/crm/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { gatehouse } from './support/cli.js';
import { testDatabaseEnvSync } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { expectProblem, json, ownAccountContact, type Page, type Row } from './support/http.js';

/**
 * The gateway over HubSpot: the real gateway over HTTP, the HubSpot connector, and the HubSpot fake on
 * loopback filled from the demo's synthetic seed. The fake is the test's own, so the test sees exactly
 * what HubSpot would receive (search bodies, properties, associations) and can make HubSpot fail.
 */

const token = 'pat-eu1-test-token';
const contactRead =
  'read:account.basic read:contact.basic read:contact.reach read:note.basic write:contact.note';

interface SearchBody {
  filterGroups: { filters: Record<string, unknown>[] }[];
  sorts?: unknown[];
  properties: string[];
  limit: number;
}

/** The gateway's connector, pointed at HubSpot once the demo (and its seed) is up. */
function delegating(before: CrmConnector, current: () => CrmConnector | undefined): CrmConnector {
  const crm = () => current() ?? before;
  return {
    name: 'hubspot',
    describe: (object) => crm().describe(object),
    get: (...args) => crm().get(...args),
    query: (...args) => crm().query(...args),
    count: (...args) => crm().count(...args),
    create: (...args) => crm().create(...args),
    update: (...args) => crm().update(...args),
    delete: (...args) => crm().delete(...args),
    aggregate: (...args) => crm().aggregate(...args),
  };
}

describe('the gateway over HubSpot', () => {
  let demo: Demo;
  let fake: HubSpotFake;
  let hubspot: HubSpotConnector;
  let alice: string;

  beforeAll(async () => {
    demo = await startDemo({
      config: {
        'limits.bulkExport': { minimum: 100_000, maxTracked: 100_000 },
        'limits.breaker': { failureThreshold: 2, openSeconds: 600 },
      },
      start: { wrapConnector: (embedded) => delegating(embedded, () => hubspot) },
    });
    fake = await startHubSpotFake({ token });
    const store = await openGatehouseStore(demo.config);
    try {
      await seedHubSpotFake(fake, createEmbeddedCrm(store.db), demoSeedOwners(demo.config));
    } finally {
      await store.close();
    }
    hubspot = await createHubSpotConnector({ baseUrl: fake.url, token: async () => token });
    alice = await demo.accessToken('alice', 'call-notes', contactRead);
  });
  afterAll(async () => {
    hubspot?.close();
    await demo?.stop();
    await fake?.close();
  });

  it('a list is one search: the row filter in every filter group, explicit properties, keyset paging by hs_object_id', async () => {
    const since = fake.searches.length;
    const first = await demo.get('/crm/v1/accounts?limit=5&fields=name,territory', alice);
    expect(first.status).toBe(200);
    const page = await json<Page>(first);
    expect(page.records).toHaveLength(5);
    expect(new Set(page.records.map((r) => r.territory))).toEqual(new Set(['EMEA']));
    const territory = { propertyName: 'gatehouse_territory', operator: 'EQ', value: 'EMEA' };
    const searches = fake.searches.slice(since) as SearchBody[];
    // Every search the request made (the page, and the guard's count) keeps the row filter in each group.
    for (const search of searches) {
      for (const group of search.filterGroups) expect(group.filters).toContainEqual(territory);
    }
    const body = searches.find((s) => s.limit === 6) as SearchBody;
    expect(body.filterGroups).toEqual([{ filters: [territory] }]);
    expect(body.sorts).toEqual([{ propertyName: 'hs_object_id', direction: 'ASCENDING' }]);
    expect(body.properties).toContain('name');
    expect(body.properties).not.toContain('annualrevenue');

    const next = await demo.get(
      `/crm/v1/accounts?limit=5&fields=name,territory&cursor=${encodeURIComponent(String(page.next_cursor))}`,
      alice,
    );
    expect(next.status).toBe(200);
    const lastId = String(page.records[4]?.id);
    const paged = (fake.searches as SearchBody[]).findLast((s) => s.limit === 6);
    const after = paged?.filterGroups[0]?.filters.find((f) => f.propertyName === 'hs_object_id');
    expect(after).toMatchObject({ operator: 'GT' });
    const seen = (await json<Page>(next)).records.map((r) => String(r.id));
    expect(seen.every((id) => id > lastId)).toBe(true);
  });

  it("a client's or/ne filter becomes groups that each keep the row filter; ne keeps SQL's null rule with HAS_PROPERTY", async () => {
    const filter = "industry ne 'Banking' or name eq 'x'' or 1=1'";
    const response = await demo.get(
      `/crm/v1/accounts?limit=3&fields=name&filter=${encodeURIComponent(filter)}`,
      alice,
    );
    expect(response.status).toBe(200);
    const territory = { propertyName: 'gatehouse_territory', operator: 'EQ', value: 'EMEA' };
    const body = (fake.searches as SearchBody[]).findLast((s) => s.limit === 4);
    expect(body?.filterGroups).toEqual([
      {
        filters: [
          territory,
          { propertyName: 'industry', operator: 'HAS_PROPERTY' },
          { propertyName: 'industry', operator: 'NEQ', value: 'Banking' },
        ],
      },
      { filters: [territory, { propertyName: 'name', operator: 'EQ', value: "x' or 1=1" }] },
    ]);
  });

  it('a filter beyond what HubSpot search takes is refused 422, and nothing is searched', async () => {
    const before = fake.searches.length;
    const filter = Array.from({ length: 6 }, (_, i) => `(name eq 'a${i}' and industry ne 'b${i}')`).join(
      ' or ',
    );
    const response = await demo.get(
      `/crm/v1/accounts?fields=name&filter=${encodeURIComponent(filter)}`,
      alice,
    );
    const problem = await expectProblem(response, 422, 'INVALID_INPUT');
    expect(problem.detail).toMatch(/too complex for HubSpot search/);
    expect(fake.searches.length).toBe(before);
  });

  it("a note is created with its associations and parents, read back, and its If-Match is checked against HubSpot's last modification", async () => {
    const contact = await ownAccountContact(demo, alice, 'alice@example.com');
    const created = await demo.send('POST', '/crm/v1/notes', alice, {
      json: { contact_id: contact.id, body: 'hubspot: call went well' },
      headers: { 'idempotency-key': 'hubspot-note-1' },
    });
    expect(created.status).toBe(201);
    const note = await json<Row>(created);
    const etag = created.headers.get('etag') as string;
    expect(etag).toBeTruthy();
    const stored = fake.record('notes', hubspotNumber(String(note.id)));
    expect(stored?.properties).toMatchObject({
      hs_note_body: 'hubspot: call went well',
      gatehouse_author: 'alice@example.com',
      gatehouse_territory: 'EMEA',
      gatehouse_contact_id: hubspotNumber(String(contact.id)),
    });
    expect(stored?.associations).toEqual(
      expect.arrayContaining([
        {
          to: { id: hubspotNumber(String(contact.id)) },
          types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 202 }],
        },
      ]),
    );

    const updated = await demo.send('PATCH', `/crm/v1/notes/${note.id}`, alice, {
      json: { body: 'hubspot: call went very well' },
      headers: { 'if-match': etag, 'idempotency-key': 'hubspot-note-2' },
    });
    expect(updated.status).toBe(200);
    const fresh = updated.headers.get('etag') as string;

    // Someone edits the note in HubSpot itself: the version Gatehouse handed out is stale.
    const edit = await fetch(`${fake.url}/crm/v3/objects/notes/${hubspotNumber(String(note.id))}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { hs_note_body: 'edited in HubSpot' } }),
    });
    expect(edit.status).toBe(200);
    const stale = await demo.send('PATCH', `/crm/v1/notes/${note.id}`, alice, {
      json: { body: 'overwrite?' },
      headers: { 'if-match': fresh, 'idempotency-key': 'hubspot-note-3' },
    });
    await expectProblem(stale, 412, 'PRECONDITION_FAILED');
    expect(fake.record('notes', hubspotNumber(String(note.id)))?.properties.hs_note_body).toBe(
      'edited in HubSpot',
    );
  });

  it("HubSpot's 429 is a 429 with Retry-After from its policy; it does not open the circuit", async () => {
    fake.failNext(1, 429, 'SECONDLY');
    const limited = await demo.get('/crm/v1/accounts?limit=2&fields=name', alice);
    const problem = await expectProblem(limited, 429, 'RATE_LIMITED');
    expect(problem.limit).toBe('crm');
    expect(limited.headers.get('retry-after')).toBe('1');
    expect((await demo.get('/crm/v1/accounts?limit=2&fields=name', alice)).status).toBe(200);
  });

  it('HubSpot failing (5xx) is a 503, and after the threshold the circuit opens: HubSpot is not called', async () => {
    fake.failNext(2, 502);
    await expectProblem(
      await demo.get('/crm/v1/accounts?limit=2&fields=name', alice),
      503,
      'DEPENDENCY_UNAVAILABLE',
    );
    await expectProblem(
      await demo.get('/crm/v1/accounts?limit=2&fields=name', alice),
      503,
      'DEPENDENCY_UNAVAILABLE',
    );
    const calls = fake.calls;
    await expectProblem(await demo.get('/crm/v1/accounts?limit=2&fields=name', alice), 503, 'CIRCUIT_OPEN');
    expect(fake.calls).toBe(calls);
  });
});

describe('the HubSpot connector on its own', () => {
  let fake: HubSpotFake;
  let source: Awaited<ReturnType<typeof openGatehouseStore>>;
  let demo: Demo;

  beforeAll(async () => {
    demo = await startDemo();
    fake = await startHubSpotFake({ token });
    source = await openGatehouseStore(demo.config);
    await seedHubSpotFake(fake, createEmbeddedCrm(source.db), demoSeedOwners(demo.config));
  });
  afterAll(async () => {
    await source?.close();
    await demo?.stop();
    await fake?.close();
  });

  it("classifies from HubSpot's property metadata, never lower than Gatehouse's, and reports unmapped sensitive properties", async () => {
    const hubspot = await createHubSpotConnector({
      baseUrl: fake.url,
      token: async () => token,
      dataClasses: { account: { industry: 'internal' } },
    });
    try {
      const classes = Object.fromEntries(
        hubspot.describe('contact').fields.map((f) => [f.name, f.dataClass]),
      );
      expect(classes).toMatchObject({
        national_id: 'secret',
        date_of_birth: 'pii',
        phone: 'pii',
        first_name: 'internal',
      });
      const industry = hubspot.describe('account').fields.find((f) => f.name === 'industry');
      expect(industry?.dataClass).toBe('internal');
      const contacts = (await hubspot.survey()).find((r) => r.object === 'contact');
      expect(contacts?.vendorObject).toBe('contacts');
      expect(contacts?.fields.find((f) => f.name === 'gatehouse_national_id')).toMatchObject({
        mappedTo: 'national_id',
        classification: 'highly_sensitive',
        suggested: 'secret',
      });
      expect(contacts?.fields.filter((f) => f.suggested && !f.mappedTo).map((f) => f.name)).toEqual([
        'mobilephone',
      ]);
    } finally {
      hubspot.close();
    }
  });

  it('a mapped property the portal lacks is a configuration error at start, naming it', async () => {
    await expect(
      createHubSpotConnector({
        baseUrl: fake.url,
        token: async () => token,
        properties: { contact: { title: 'gatehouse_job_title' } },
      }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('gatehouse_job_title'),
    });
  });

  it('identity: a Gatehouse user is the HubSpot owner with their e-mail, territory from the primary team, refreshed', async () => {
    const hubspot = await createHubSpotConnector({ baseUrl: fake.url, token: async () => token });
    try {
      expect(hubspot.identity({ email: 'Alice@example.com' })).toMatchObject({ territory: 'EMEA' });
      expect(hubspot.identity({ email: 'new.rep@example.com' })).toBeUndefined();
      fake.loadOwners([
        {
          id: '900',
          email: 'new.rep@example.com',
          firstName: 'New',
          lastName: 'Rep',
          teams: [{ id: '12', name: 'APAC', primary: true }],
        },
      ]);
      await hubspot.refreshOwners();
      expect(hubspot.identity({ email: 'new.rep@example.com' })).toEqual({
        crmUserId: '900',
        email: 'new.rep@example.com',
        territory: 'APAC',
      });
      expect(hubspot.identity({ email: 'alice@example.com' })).toBeUndefined();
    } finally {
      fake.loadOwners(
        demoSeedOwners(demo.config).map((o, i) => ({
          id: String(100 + i),
          email: o.email,
          firstName: o.email,
          lastName: 'Demo',
          teams: [{ id: '1', name: o.territory, primary: true }],
        })),
      );
      hubspot.close();
    }
  });

  it("backs off before the portal's daily limit: at the reserve, calls are refused (429) without reaching HubSpot", async () => {
    const hubspot = await createHubSpotConnector({
      baseUrl: fake.url,
      token: async () => token,
      dailyReserve: 5,
    });
    try {
      const [first] = (await hubspot.query('account', { fields: ['name'], where: [], limit: 1 })).records;
      fake.setDailyRemaining(6);
      expect(await hubspot.get('account', String(first?.id), ['name'], [])).toMatchObject({ id: first?.id });
      const calls = fake.calls;
      await expect(hubspot.get('account', String(first?.id), ['name'], [])).rejects.toMatchObject({
        code: 'RATE_LIMITED',
        extensions: { limit: 'crm-daily' },
      });
      expect(fake.calls).toBe(calls);
    } finally {
      fake.setDailyRemaining(500_000);
      hubspot.close();
    }
  });

  it('children follow their account: a new territory is written to them, deleting the account deletes them first', async () => {
    const hubspot = await createHubSpotConnector({ baseUrl: fake.url, token: async () => token });
    try {
      const account = await hubspot.create('account', {
        name: 'Cascade Ltd',
        territory: 'EMEA',
        owner: 'alice@example.com',
      });
      const contact = await hubspot.create('contact', {
        first_name: 'Casey',
        last_name: 'Cade',
        account_id: account.id as string,
      });
      expect(contact).toMatchObject({
        account_id: account.id,
        territory: 'EMEA',
        owner: 'alice@example.com',
      });
      const note = await hubspot.create('note', {
        body: 'met',
        author: 'alice@example.com',
        contact_id: contact.id as string,
      });
      expect(note).toMatchObject({ account_id: account.id, territory: 'EMEA' });

      // A caller limited to EMEA cannot move the account out of EMEA; one without that limit can.
      await expect(
        hubspot.update('account', String(account.id), { territory: 'NA' }, [
          { field: 'territory', op: 'eq', value: 'EMEA' },
        ]),
      ).rejects.toMatchObject({ code: 'POLICY_DENIED' });
      await hubspot.update('account', String(account.id), { territory: 'NA' }, []);
      expect(await hubspot.get('contact', String(contact.id), ['territory'], [])).toMatchObject({
        territory: 'NA',
      });
      expect(await hubspot.get('note', String(note.id), ['territory'], [])).toMatchObject({
        territory: 'NA',
      });
      expect(
        await hubspot.get(
          'contact',
          String(contact.id),
          [],
          [{ field: 'territory', op: 'eq', value: 'EMEA' }],
        ),
      ).toBeUndefined();

      expect(await hubspot.delete('account', String(account.id), [])).toBe(true);
      expect(fake.record('contacts', hubspotNumber(String(contact.id)))).toBeUndefined();
      expect(fake.record('notes', hubspotNumber(String(note.id)))).toBeUndefined();
    } finally {
      hubspot.close();
    }
  });

  it("a wrong token stops the connector at start with HubSpot's 401 (through the gateway's breaker: a 503)", async () => {
    const hubspot = createHubSpotConnector({ baseUrl: fake.url, token: async () => 'pat-wrong' });
    await expect(hubspot).rejects.toThrow(/401 INVALID_AUTHENTICATION/);
  });
});

describe('gatehouse crm describe and crm token import on HubSpot', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-hubspot-cli-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("prints the portal's properties, how they map, and flags sensitive ones nothing maps onto", () => {
    const config = join(scratch, 'hubspot.json');
    writeFileSync(config, JSON.stringify({ demo: true, crm: { kind: 'hubspot' } }));
    const dataDir = join(scratch, 'describe');
    const result = gatehouse(['crm', 'describe', '--json', '--config', config, '--data-dir', dataDir]);
    expect(result.code, result.stderr).toBe(0);
    const described = JSON.parse(result.stdout) as {
      crm: string;
      objects: { object: string; vendorObject: string; fields: Record<string, unknown>[] }[];
      unmapped_sensitive: { object: string; field: string; suggested: string }[];
    };
    expect(described.crm).toBe('hubspot');
    const contact = described.objects.find((o) => o.object === 'contact');
    expect(contact?.vendorObject).toBe('contacts');
    expect(contact?.fields.find((f) => f.name === 'firstname')).toMatchObject({ mappedTo: 'first_name' });
    expect(described.unmapped_sensitive).toEqual([
      { object: 'contact', vendorObject: 'contacts', field: 'mobilephone', suggested: 'pii' },
    ]);
    const human = gatehouse(['crm', 'describe', '--config', config, '--data-dir', dataDir]);
    expect(human.stdout).toMatch(/! mobilephone\s+string\/phonenumber\s+unmapped, sensitive \(pii\)/);
  });

  it('stores a private-app token from a file, refuses what is not one and a silent replacement, in one line', () => {
    const dataDir = join(scratch, 'token');
    const file = join(scratch, 'token.txt');
    writeFileSync(file, 'hunter2\n');
    const bad = gatehouse(['crm', 'token', 'import', file, '--data-dir', dataDir]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).not.toContain('hunter2');

    writeFileSync(file, 'pat-eu1-0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d\n');
    const stored = gatehouse(['crm', 'token', 'import', file, '--json', '--data-dir', dataDir]);
    expect(stored.code, stored.stderr).toBe(0);
    expect(JSON.parse(stored.stdout)).toEqual({ secret: 'crm/hubspot/token' });

    writeFileSync(file, 'pat-eu1-ffffffff-4f50-4a6b-8c7d-9e0f1a2b3c4d\n');
    const again = gatehouse(['crm', 'token', 'import', file, '--data-dir', dataDir]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('--replace');
    expect(gatehouse(['crm', 'token', 'import', file, '--replace', '--data-dir', dataDir]).code).toBe(0);
  });
});

describe('serve --demo --crm hubspot', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-hubspot-serve-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("starts the HubSpot fake, names it in the banner, and governs the fake's records", async () => {
    const dataDir = join(scratch, 'serve');
    const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--demo', '--crm', 'hubspot', '--port', '0', '--data-dir', dataDir],
      {
        env: { PATH: process.env.PATH, GATEHOUSE_LOG_LEVEL: 'warn', ...testDatabaseEnvSync(dataDir) },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const banner = await new Promise<string>((resolve, reject) => {
        let stderr = '';
        child.stderr.on('data', (chunk) => {
          stderr += String(chunk);
          if (/demo users: .*\n/.test(stderr)) resolve(stderr);
        });
        child.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
      });
      const vendor = /crm: +the vendor's fake at (http:\/\/\S+)/.exec(banner)?.[1];
      expect(vendor).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The fake is a HubSpot portal: no token, no data, HubSpot's error body.
      const anonymous = await fetch(`${vendor}/crm/v3/objects/companies?limit=1`);
      expect(anonymous.status).toBe(401);
      expect(await anonymous.json()).toMatchObject({ status: 'error', category: 'INVALID_AUTHENTICATION' });
      const url = /Gatehouse is ready at (http:\/\/\S+)/.exec(banner)?.[1];
      const token = gatehouse([
        'dev',
        'token',
        '--user',
        'alice',
        '--app',
        'call-notes',
        '--scope',
        'read:account.basic',
        '--data-dir',
        dataDir,
      ]).stdout.trim();
      const accounts = await fetch(`${url}/crm/v1/accounts?limit=3&fields=territory`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(accounts.status).toBe(200);
      const page = (await accounts.json()) as { records: Array<{ territory: string }> };
      expect(page.records.map((r) => r.territory)).toEqual(['EMEA', 'EMEA', 'EMEA']);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

/** The HubSpot id behind a Gatehouse id (prefix, `0S`, base 62 of id − 1). */
function hubspotNumber(id: string): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let n = 0n;
  for (const ch of id.slice(5)) n = n * 62n + BigInt(alphabet.indexOf(ch));
  return (n + 1n).toString();
}
