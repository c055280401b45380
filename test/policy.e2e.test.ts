import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerPolicyCommands } from '../src/cli/commands/policy.js';
import { loadConfig, type Config } from '../src/config/index.js';
import { storedPolicyVersions } from '../src/control/index.js';
import { defaultPolicyDir, readPolicyTestFiles } from '../src/policy-library/index.js';
import { defaultFiles, writeLibrary } from '../src/policy-library/test-support.js';
import { openGatehouseStore } from '../src/database/index.js';
import { bumpControlRevision } from '../src/store/index.js';
import { gatehouseAsync } from './support/cli.js';
import { openTestSql, testDatabase, testDatabaseEnvSync, type TestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import {
  auditEventsOf,
  expectProblem,
  json,
  requestIdOf,
  type Page,
  type Problem,
  type Row,
} from './support/http.js';

/**
 * Policy as code over real HTTP: Cedar decides every gateway request (deny by default, 403 naming the
 * policy), the seed's two examples hold as shipped policies, each decision is recorded and replayed by
 * simulation, and the admin API reads, tests, simulates and publishes the library, audited.
 */

const notesScopes =
  'read:account.basic read:contact.basic read:contact.reach read:note.basic write:contact.note';

let demo: Demo;
let db: TestSql;
let alice: string;
let bob: string;
let bobNotes: string;
let erin: string;
let dashboard: string;
let dashboardPii: string;
let dave: string;
let carol: string;
let aliceAccount: string;
let bobAccount: string;
/** Request ids of answers whose recorded decisions the simulation tests look for. */
const requests: Record<string, string> = {};

interface Simulation {
  active: string;
  candidate: string;
  total: number;
  changes: Record<
    'allow_to_deny' | 'deny_to_allow' | 'row_filter_changed',
    { count: number; rules: { rule: string; count: number; examples: string[] }[] }
  >;
}

beforeAll(async () => {
  // The bulk-export guard is raised so that the export rules, not the guard, decide the large pages,
  // and detection is off: its playbook would revoke these tokens for reading at night or in bulk.
  // Pages up to 300 records, so that a published export limit of 200 (which the library's own
  // tests allow) can be crossed.
  demo = await startDemo({
    config: {
      'limits.bulkExport.minimum': 100_000,
      'detect.enabled': false,
      'gateway.maxPageSize': 300,
    },
  });
  db = await openTestSql(demo.dataDir);
  // An admin widened the dashboard's approved scopes to contact PII by mistake: the policy still holds.
  const app = await db.get<{ scopes: string }>("select scopes from apps where id = 'pipeline-dashboard'");
  const scopes = JSON.parse(app?.scopes as string) as string[];
  await db.run(
    "update apps set scopes = ? where id = 'pipeline-dashboard'",
    JSON.stringify([...scopes, 'read:contact.basic', 'read:contact.reach']),
  );
  [alice, bob, bobNotes, erin, dashboard, dashboardPii, dave, carol] = await Promise.all([
    demo.accessToken('alice', 'call-notes', notesScopes),
    demo.accessToken('bob', 'call-notes', notesScopes),
    demo.accessToken('bob', 'call-notes', 'read:account.basic write:contact.note'),
    demo.accessToken('erin', 'call-notes', notesScopes),
    demo.accessToken('bob', 'pipeline-dashboard', 'read:opportunity.basic read:opportunity.aggregate'),
    demo.accessToken('bob', 'pipeline-dashboard', 'read:contact.basic read:contact.reach'),
    demo.accessToken('dave', 'console', 'admin'),
    demo.accessToken('carol', 'console', 'audit:read'),
  ]);
  const accountOf = async (owner: string) =>
    (
      (await db.get<{ id: string }>(
        "select id from crm_accounts where territory = 'EMEA' and owner = ? order by id limit 1",
        owner,
      )) as { id: string }
    ).id;
  aliceAccount = await accountOf('alice@example.com');
  bobAccount = await accountOf('bob@example.com');
});

afterAll(async () => {
  await db?.close();
  await demo?.stop();
});

const problemOf = async (response: Response, status: number, code: string): Promise<Problem> =>
  expectProblem(response, status, code);

describe('runtime authorization: Cedar decides every request', () => {
  it('allows a rep her territory, and answers a record of another territory with 404', async () => {
    const page = await json<Page>(await demo.get('/crm/v1/accounts?limit=5&fields=name,territory', alice));
    expect(page.records.length).toBe(5);
    for (const record of page.records) expect(record.territory).toBe('EMEA');
    const single = await demo.get(`/crm/v1/accounts/${aliceAccount}?fields=name`, alice);
    expect(single.status).toBe(200);
    requests.aliceReadsOne = requestIdOf(single);
    const naAccount = (
      (await db.get<Row>("select id from crm_accounts where territory = 'NA' order by id limit 1")) as Row
    ).id;
    await problemOf(await demo.get(`/crm/v1/accounts/${naAccount}`, alice), 404, 'NOT_FOUND');
  });

  it('treats a page of more than gateway.exportAbove records as an export: reps are denied by default', async () => {
    const response = await demo.get('/crm/v1/contacts?limit=150&fields=first_name', alice);
    const problem = await problemOf(response, 403, 'POLICY_DENIED');
    expect(problem).toMatchObject({ rule: 'default-deny', rules: [] });
    expect(problem.policy_version).toMatch(/^[0-9a-f]{12}$/);
    requests.aliceExport = requestIdOf(response);
    // The same rep paging at the usual size reads.
    expect((await demo.get('/crm/v1/contacts?limit=100&fields=first_name', alice)).status).toBe(200);
  });

  it('lets a manager export his territory from the loopback network (runtime.manager-export)', async () => {
    const response = await demo.get('/crm/v1/accounts?limit=150&fields=name,territory', bob);
    expect(response.status).toBe(200);
    requests.bobExport = requestIdOf(response);
    for (const record of (await json<Page>(response)).records) expect(record.territory).toBe('EMEA');
  });

  it('names the deciding policy and its version in the audit event of a denial', async () => {
    const [event] = await auditEventsOf(demo, carol, requests.aliceExport as string);
    expect(event?.event).toMatchObject({ outcome: 'deny', reason: 'POLICY_DENIED', action: 'crm.list' });
    expect(event?.event.policy_version).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe("the seed's first example: notes only on accounts assigned to the rep", () => {
  const note = (token: string, values: Record<string, string>) =>
    demo.send('POST', '/crm/v1/notes', token, { json: { body: 'Called about the renewal.', ...values } });

  it('lets alice write a note on her own account', async () => {
    const response = await note(alice, { account_id: aliceAccount });
    expect(response.status).toBe(201);
    requests.aliceNoteOwn = requestIdOf(response);
  });

  it("refuses alice's note on bob's account of the same territory with 403 naming the policy", async () => {
    const response = await note(alice, { account_id: bobAccount });
    const problem = await problemOf(response, 403, 'POLICY_DENIED');
    expect(problem.rule).toBe('runtime.notes-on-assigned-accounts');
    expect(problem.detail).toContain('runtime.notes-on-assigned-accounts');
    requests.aliceNoteOther = requestIdOf(response);
    // Through a contact of that account, the same.
    const contact = await db.get<Row>(
      "select id from crm_contacts where account_id = ? and consent like '%sales_outreach%' order by id limit 1",
      bobAccount,
    );
    if (contact) {
      const viaContact = await note(alice, { contact_id: String(contact.id) });
      expect((await problemOf(viaContact, 403, 'POLICY_DENIED')).rule).toBe(
        'runtime.notes-on-assigned-accounts',
      );
    }
  });

  it('answers an account the rep cannot see at all with 422, never revealing it', async () => {
    await problemOf(await note(erin, { account_id: aliceAccount }), 422, 'INVALID_INPUT');
  });

  it('lets the manager write notes on any account of his territory', async () => {
    expect((await note(bobNotes, { account_id: aliceAccount })).status).toBe(201);
  });

  it("refuses changing alice's own note once it hangs off an account that is not hers", async () => {
    const row = await db.get<Row>(
      "select id from crm_notes where author = 'alice@example.com' and owner = 'bob@example.com' and territory = 'EMEA' order by id limit 1",
    );
    expect(row).toBeDefined();
    const read = await demo.get(`/crm/v1/notes/${String(row?.id)}?fields=body`, alice);
    expect(read.status).toBe(200);
    const response = await demo.send('PATCH', `/crm/v1/notes/${String(row?.id)}`, alice, {
      json: { body: 'changed' },
      headers: { 'if-match': read.headers.get('etag') as string },
    });
    expect((await problemOf(response, 403, 'POLICY_DENIED')).rule).toBe('runtime.notes-on-assigned-accounts');
  });
});

describe("the seed's second example: the dashboard reads aggregates, never raw PII", () => {
  it('aggregates opportunities through the dashboard', async () => {
    const response = await demo.get(
      '/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)',
      dashboard,
    );
    expect(response.status).toBe(200);
    expect((await json<{ groups: unknown[] }>(response)).groups.length).toBeGreaterThan(0);
  });

  it('refuses any request of the dashboard that reads, or filters on, a PII field, whatever its scopes', async () => {
    const read = await demo.get('/crm/v1/contacts?limit=5&fields=first_name,email', dashboardPii);
    expect((await problemOf(read, 403, 'POLICY_DENIED')).rule).toBe('runtime.dashboard-no-raw-pii');
    requests.dashboardPii = requestIdOf(read);
    const everything = await demo.get('/crm/v1/contacts?limit=5', dashboardPii);
    expect((await problemOf(everything, 403, 'POLICY_DENIED')).rule).toBe('runtime.dashboard-no-raw-pii');
    const filtered = await demo.get(
      `/crm/v1/contacts?limit=5&fields=first_name&filter=${encodeURIComponent("email eq 'a@b.c'")}`,
      dashboardPii,
    );
    expect((await problemOf(filtered, 403, 'POLICY_DENIED')).rule).toBe('runtime.dashboard-no-raw-pii');
    const id = (
      (await db.get<Row>("select id from crm_contacts where territory = 'EMEA' order by id limit 1")) as Row
    ).id;
    const one = await demo.get(`/crm/v1/contacts/${String(id)}?fields=phone`, dashboardPii);
    expect((await problemOf(one, 403, 'POLICY_DENIED')).rule).toBe('runtime.dashboard-no-raw-pii');
    // Fields that are not PII stay readable under the same token.
    expect((await demo.get('/crm/v1/contacts?limit=5&fields=first_name', dashboardPii)).status).toBe(200);
  });
});

describe('recorded decisions', () => {
  it('are kept with their Cedar input and never the record contents or the token', async () => {
    const rows = await recordedDecisions();
    const own = rows.filter((r) => r.request_id === requests.aliceNoteOwn);
    expect(own.map((r) => `${r.action}:${r.object}:${r.decision}`)).toEqual(
      expect.arrayContaining(['read:account:allow', 'write:note:allow']),
    );
    const record = own.find((r) => r.input.includes('"resource"') && r.action === 'write');
    expect(JSON.parse(record?.input ?? '{}')).toMatchObject({
      principal: { id: expect.any(String), email: 'alice@example.com', role: 'sales_rep', app: 'call-notes' },
      resource: { territory: 'EMEA', owner: 'alice@example.com', account: aliceAccount },
      context: { fields: ['account_id', 'body'], record_count: 1, ip: '127.0.0.0/24' },
    });
    const text = JSON.stringify(rows);
    expect(text).not.toContain('Called about the renewal');
    expect(text).not.toContain(alice.slice(0, 40));
    const denied = rows.find((r) => r.request_id === requests.aliceNoteOther && r.decision === 'deny');
    expect(denied?.policy_ids).toBe('runtime.notes-on-assigned-accounts');
  });
});

describe('one decision per read', () => {
  it('a read of one record asks Cedar once: the row filter it allows is exact, and the fetch carries it', async () => {
    const response = await demo.get(`/crm/v1/accounts/${aliceAccount}`, alice);
    expect(response.status).toBe(200);
    const rows = (await recordedDecisions()).filter((r) => r.request_id === requestIdOf(response));
    expect(rows.map((r) => `${r.action}:${r.object}:${r.decision}`)).toEqual(['read:account:allow']);
    const [event] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(event?.event).toMatchObject({ action: 'crm.read', outcome: 'allow', record_count: 1 });
  });
});

describe('simulation over the recorded decisions', () => {
  it('reports what removing the notes rule would change, per rule, with example request ids', async () => {
    const response = await demo.send('POST', '/admin/v1/policies/simulate', dave, {
      json: { files: { 'runtime/notes.cedar': null }, since: '1h' },
    });
    expect(response.status).toBe(200);
    const report = await json<Simulation>(response);
    expect(report.total).toBeGreaterThan(10);
    const allowed = report.changes.deny_to_allow;
    const rule = allowed.rules.find((r) => r.rule === 'runtime.sales-own-territory');
    expect(rule?.examples).toContain(requests.aliceNoteOther);
    expect(report.changes.allow_to_deny.count).toBe(0);
    // Alice's write row filter loses its owner condition.
    expect(report.changes.row_filter_changed.count).toBeGreaterThan(0);
  });

  it('reports what lowering the bulk-export limit would deny, from the CLI as well', async () => {
    const exportRules = readLibraryFile('runtime/export.cedar').replace('> 1000', '> 100');
    const response = await demo.send('POST', '/admin/v1/policies/simulate', dave, {
      json: { files: { 'runtime/export.cedar': exportRules } },
    });
    const report = await json<Simulation>(response);
    expect(response.status, JSON.stringify(report)).toBe(200);
    expect(report.changes.allow_to_deny.rules).toEqual([
      { rule: 'runtime.bulk-export-limit', count: 1, examples: [requests.bobExport] },
    ]);
    expect(report.changes.deny_to_allow.count).toBe(0);

    const candidate = await writeCandidate({ 'runtime/export.cedar': exportRules });
    const cli = await runCli('policy', 'simulate', '--candidate', candidate, '--since', '1h', '--json');
    expect(JSON.parse(cli)).toMatchObject({
      changes: {
        allow_to_deny: {
          count: 1,
          rules: [{ rule: 'runtime.bulk-export-limit', examples: [requests.bobExport] }],
        },
      },
    });
  });
});

describe('the policy admin API', () => {
  it('reads the active library with its files and validation status (admin scope only)', async () => {
    const response = await demo.get('/admin/v1/policies', dave);
    expect(response.status).toBe(200);
    const body = await json<{
      version: string;
      validation: { status: string };
      policies: { id: string; file: string }[];
      files: { path: string; text: string }[];
    }>(response);
    expect(body.validation.status).toBe('valid');
    expect(body.policies.map((p) => p.id)).toEqual(
      expect.arrayContaining(['runtime.notes-on-assigned-accounts', 'runtime.dashboard-no-raw-pii']),
    );
    expect(body.files.find((f) => f.path === 'runtime/notes.cedar')?.text).toContain('resource.owner');
    await problemOf(await demo.get('/admin/v1/policies', alice), 403, 'SCOPE_MISSING');
    await problemOf(await demo.get('/admin/v1/policies'), 401, 'TOKEN_MISSING');
  });

  it("runs the library's tests, and posted cases against a candidate", async () => {
    const library = await json<{ passed: boolean; total: number }>(
      await demo.send('POST', '/admin/v1/policies/test', dave, { json: {} }),
    );
    expect(library).toMatchObject({ passed: true });
    expect(library.total).toBeGreaterThan(20);
    const posted = await json<{ passed: boolean; files: { results: { decision: string }[] }[] }>(
      await demo.send('POST', '/admin/v1/policies/test', dave, {
        json: {
          files: { 'runtime/notes.cedar': null },
          cases: [
            {
              principal: {
                id: 'alice',
                email: 'alice@example.com',
                role: 'sales_rep',
                territory: 'EMEA',
                app: 'call-notes',
              },
              action: 'write',
              resource: { object: 'note', id: 'n', territory: 'EMEA', owner: 'bob@example.com' },
              expect: 'deny',
            },
          ],
        },
      }),
    );
    expect(posted.passed).toBe(false);
    expect(posted.files[0]?.results[0]?.decision).toBe('allow');
  });

  it("refuses an invalid candidate with 422 and Cedar's message and location", async () => {
    const response = await demo.send('POST', '/admin/v1/policies/publish', dave, {
      json: {
        files: {
          'runtime/bad.cedar':
            '@id("runtime.bad")\n@reason("x")\npermit (principal, action, resource)\nwhen { resource.region == "EMEA" };\n',
        },
        reason: 'try a region rule',
      },
    });
    const problem = await problemOf(response, 422, 'POLICY_INVALID');
    expect(problem).toMatchObject({ file: 'runtime/bad.cedar', line: 4 });
    expect(problem.detail).toMatch(/region/);
    const [event] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(event?.event).toMatchObject({
      action: 'admin.policies.publish',
      outcome: 'deny',
      actor_id: 'dave@example.com',
    });
  });

  it('refuses file names that leave the library, and bodies over the cap, and records both', async () => {
    for (const name of ['../../etc/passwd', 'runtime/../../x.cedar', '/tmp/x.cedar', 'runtime/x.sh']) {
      const response = await demo.send('POST', '/admin/v1/policies/simulate', dave, {
        json: { files: { [name]: 'permit (principal, action, resource);' } },
      });
      await problemOf(response, 422, 'INVALID_INPUT');
    }
    const huge = await demo.send('POST', '/admin/v1/policies/test', dave, {
      json: { files: { 'runtime/x.cedar': `// ${'x'.repeat(1_100_000)}` } },
    });
    await problemOf(huge, 413, 'PAYLOAD_TOO_LARGE');
    const [event] = await auditEventsOf(demo, carol, requestIdOf(huge));
    expect(event?.event).toMatchObject({ outcome: 'deny', actor_id: 'dave@example.com' });
  });

  it('publishes a candidate: audited with actor, old and new version and reason, in force within a second', async () => {
    const before = await json<{ version: string }>(await demo.get('/admin/v1/policies', dave));
    // Asked once under the old version: the decision remembered with bob's token must not outlive it.
    expect((await demo.get('/crm/v1/accounts?limit=250&fields=name', bob)).status).toBe(200);
    const exportRules = readLibraryFile('runtime/export.cedar').replace('> 1000', '> 200');
    const response = await demo.send('POST', '/admin/v1/policies/publish', dave, {
      json: {
        files: { 'runtime/export.cedar': exportRules },
        reason: 'exports above 200 records need an elevation',
      },
    });
    expect(response.status).toBe(200);
    const published = await json<{ version: string; previous: string }>(response);
    expect(published.previous).toBe(before.version);
    const events = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(events.map((e) => e.event.action)).toEqual(['policy.publish', 'admin.policies.publish']);
    expect(events[0]?.event).toMatchObject({
      actor_id: 'dave@example.com',
      actor_role: 'admin',
      resource_id: published.version,
      outcome: 'allow',
    });
    expect(events[0]?.event.reason).toBe(
      `version ${before.version} -> ${published.version}; exports above 200 records need an elevation`,
    );

    await vi.waitFor(
      async () => {
        const now = await json<{ version: string }>(await demo.get('/admin/v1/policies', dave));
        expect(now.version).toBe(published.version);
      },
      { timeout: 5000, interval: 200 },
    );
    const refused = await demo.get('/crm/v1/accounts?limit=250&fields=name', bob);
    const problem = await problemOf(refused, 403, 'POLICY_DENIED');
    expect(problem).toMatchObject({ rule: 'runtime.bulk-export-limit', policy_version: published.version });
    await problemOf(
      await demo.send('POST', '/admin/v1/policies/publish', dave, { json: { files: {}, reason: '' } }),
      422,
      'INVALID_INPUT',
    );
  });
});

describe('publishing a library that fails its own tests', () => {
  it('is refused with 422 and the failing cases, audited; --force with a reason publishes it, audited as forced', async () => {
    const before = await json<{ version: string }>(await demo.get('/admin/v1/policies', dave));
    const refused = await demo.send('POST', '/admin/v1/policies/publish', dave, {
      json: { files: { 'runtime/notes.cedar': null }, reason: 'notes rules are too strict' },
    });
    const problem = await problemOf(refused, 422, 'POLICY_TESTS_FAILED');
    expect(problem).toMatchObject({ failed: 3, total: 33 });
    expect(problem.detail).toContain("a rep cannot write a note on another rep's account");
    const [denied] = await auditEventsOf(demo, carol, requestIdOf(refused));
    expect(denied?.event).toMatchObject({ action: 'admin.policies.publish', outcome: 'deny' });
    expect((await json<{ version: string }>(await demo.get('/admin/v1/policies', dave))).version).toBe(
      before.version,
    );

    const forced = await demo.send('POST', '/admin/v1/policies/publish', dave, {
      json: { files: { 'runtime/notes.cedar': null }, reason: 'incident 42: notes off now', force: true },
    });
    expect(forced.status).toBe(200);
    const published = await json<{ version: string; tests: object }>(forced);
    expect(published.tests).toEqual({ total: 33, failed: 3, forced: true });
    const [event] = await auditEventsOf(demo, carol, requestIdOf(forced));
    expect(event?.event).toMatchObject({ action: 'policy.publish', actor_id: 'dave@example.com' });
    expect(event?.event.reason).toBe(
      `version ${before.version} -> ${published.version}; forced past 3 of 33 failing policy tests; incident 42: notes off now`,
    );
    // Put the notes rules back for the tests that follow.
    const restored = await demo.send('POST', '/admin/v1/policies/publish', dave, {
      json: { files: { 'runtime/notes.cedar': readLibraryFile('runtime/notes.cedar') }, reason: 'restore' },
    });
    expect(restored.status).toBe(200);
    const { version } = await json<{ version: string }>(restored);
    await vi.waitFor(
      async () =>
        expect((await json<{ version: string }>(await demo.get('/admin/v1/policies', dave))).version).toBe(
          version,
        ),
      { timeout: 5000, interval: 200 },
    );
  });

  it('gatehouse policy publish refuses it in one line, and publishes it with --force, saying so', async () => {
    const dir = await writeLibrary([
      ...(await defaultFiles()).filter((f) => f.path !== 'runtime/notes.cedar'),
      ...(await readPolicyTestFiles(defaultPolicyDir())),
    ]);
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-publish-'));
    try {
      // Not blocking this process: the demo server in it keeps reading revocations meanwhile.
      const refused = await gatehouseAsync([
        'policy',
        'publish',
        dir,
        '--reason',
        'try',
        '--data-dir',
        dataDir,
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toContain('fails 3 of its 33 test cases');
      expect(refused.stderr).toContain('[POLICY_TESTS_FAILED]');
      expect(await activeVersionOf(dataDir)).toBeUndefined();

      const forced = await gatehouseAsync([
        'policy',
        'publish',
        dir,
        '--reason',
        'incident 42',
        '--force',
        '--json',
        '--data-dir',
        dataDir,
      ]);
      expect(forced.code).toBe(0);
      const out = JSON.parse(forced.stdout) as { version: string; tests: object };
      expect(out.tests).toEqual({ total: 33, failed: 3, forced: true });
      expect(await activeVersionOf(dataDir)).toBe(out.version);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a published library that cannot be loaded', () => {
  it('leaves the previous one in force and says so in the validation status', async () => {
    const before = await json<{ version: string }>(await demo.get('/admin/v1/policies', dave));
    // The store's active version names one it does not hold (a damaged or tampered database).
    await activateMissingVersion(demo.config, 'ffffffffffff');
    const body = await json<{
      version: string;
      validation: { status: string; published: string; error: string };
    }>(await demo.get('/admin/v1/policies', dave));
    expect(body.version).toBe(before.version);
    expect(body.validation).toMatchObject({ status: 'invalid', published: 'ffffffffffff' });
    expect(body.validation.error).toContain(`${before.version} stays in force`);
    // What is missing is named inside the data dir, never by the server's absolute path.
    expect(JSON.stringify(body)).not.toContain(demo.dataDir);
    expect((await demo.get('/crm/v1/accounts?limit=1', alice)).status).toBe(200);
  });
});

async function activeVersionOf(dataDir: string): Promise<string | undefined> {
  const store = await openGatehouseStore(
    loadConfig({ env: {}, overrides: { dataDir, ...(await testDatabase(dataDir)) } }),
  );
  try {
    return await storedPolicyVersions(store.db).active();
  } finally {
    await store.close();
  }
}

async function activateMissingVersion(config: Config, version: string): Promise<void> {
  const store = await openGatehouseStore(config);
  try {
    await store.db
      .insertInto('control_activations' as never)
      .values({ kind: 'policy', version, activated_at: new Date().toISOString() } as never)
      .execute();
    await bumpControlRevision(store.db);
  } finally {
    await store.close();
  }
}

interface DecisionRow {
  request_id: string;
  action: string;
  object: string;
  decision: string;
  policy_ids: string;
  input: string;
}

async function recordedDecisions(): Promise<DecisionRow[]> {
  // The gateway writes decisions in batches within a quarter of a second.
  await new Promise((resolve) => setTimeout(resolve, 600));
  return db.all<DecisionRow>(
    'select request_id, action, object, decision, policy_ids, input from policy_decisions',
  );
}

function readLibraryFile(path: string): string {
  return readFileSync(join(defaultPolicyDir(), ...path.split('/')), 'utf8');
}

/** The built-in library with some files replaced, written to a fresh directory. */
async function writeCandidate(changes: Record<string, string>): Promise<string> {
  const files = (await defaultFiles()).filter((f) => !(f.path in changes));
  for (const [path, text] of Object.entries(changes)) files.push({ path, text });
  return writeLibrary(files);
}

async function runCli(...args: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
  // The demo's store, found as a `gatehouse` process finds it: on PostgreSQL through the environment.
  for (const [name, value] of Object.entries(testDatabaseEnvSync(demo.dataDir))) vi.stubEnv(name, value);
  const program = new Command('gatehouse').exitOverride();
  registerPolicyCommands(program);
  try {
    await program.parseAsync(['node', 'gatehouse', ...args, '--data-dir', demo.dataDir]);
  } finally {
    spy.mockRestore();
    vi.unstubAllEnvs();
    process.exitCode = undefined;
  }
  return out;
}
