import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync, loginAs, logout } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf } from './support/http.js';

/**
 * The runbook of an app (its record of processing), generated from live state: the plan's regulation
 * mapping as registered, its scopes as fields in plain language, residency, DSR reach, who approved it;
 * through the admin API (audited) and `gatehouse compliance runbook` against the running server.
 */

let demo: Demo;
let dir: string;
const tokens = new Map<string, string>();

const plan = {
  name: 'lead-caller',
  owner: 'alice@example.com',
  purpose: 'call the leads of my territory',
  scopes: ['read:account.basic', 'read:contact.basic'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  consent_purpose: 'sales_outreach',
  redirect_uris: ['http://localhost:5173/callback'],
  lawful_basis: 'legitimate_interests',
  purposes: ['follow up on sales leads by phone'],
  data_categories: ['identification', 'professional'],
  keeps_copies: { where: 'app', dsr_webhook: 'https://lead-caller.example.com/gatehouse/dsr' },
  residency: { region: 'US', transfers: ['EU'], transfer_mechanism: 'SCC 2021/914 module 2' },
};

async function consoleToken(user: string): Promise<string> {
  const scope = { rita: 'maker review', carol: 'audit:read' }[user] ?? 'maker';
  if (!tokens.has(user)) tokens.set(user, await demo.accessToken(user, 'console', scope));
  return tokens.get(user) as string;
}

beforeAll(async () => {
  demo = await startDemo();
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-runbook-'));
  const registered = await demo.send('POST', '/admin/v1/apps', await consoleToken('alice'), { json: plan });
  expect(registered.status).toBe(201);
});

afterAll(async () => {
  await demo?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('GET /admin/v1/apps/{id}/runbook', () => {
  it('answers the record of processing from live state, and the read is audited', async () => {
    const response = await demo.get('/admin/v1/apps/lead-caller/runbook', await consoleToken('carol'));
    expect(response.status).toBe(200);
    const runbook = await json<Record<string, unknown>>(response);
    expect(runbook).toMatchObject({
      app: { id: 'lead-caller', owner: 'alice@example.com', state: 'approved' },
      lawful_basis: 'legitimate_interests',
      purposes: ['follow up on sales leads by phone'],
      consent_purpose: 'sales_outreach',
      data_categories: ['identification', 'professional'],
      retention: { days: 30 },
      residency: { region: 'US', stores: 'app', transfers: ['EU'], home: 'EU' },
    });
    const access = runbook.access as { scope: string; plain: string }[];
    expect(access.find((a) => a.scope === 'read:contact.basic')?.plain).toMatch(
      /^reads contact records: First name \(internal\), Last name \(internal\)/,
    );
    expect((runbook.approvals as { action: string }[]).length).toBeGreaterThan(0);
    expect(JSON.stringify(runbook.data_subject_requests)).toContain('signed webhook');
    const [event] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(response));
    expect(event?.event).toMatchObject({ action: 'admin.apps.runbook', resource_id: 'lead-caller' });
  });

  it('is print-ready HTML with format=html, escaping what the plan says', async () => {
    const response = await demo.get(
      '/admin/v1/apps/lead-caller/runbook?format=html',
      await consoleToken('rita'),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const html = await response.text();
    expect(html).toContain('@page { size: A4');
    expect(html).toContain('<h2>Where data goes</h2>');
    expect(html).not.toContain('<script');
  });

  it('is not shown to a maker for an app of someone else (404, as for the app itself)', async () => {
    const response = await demo.get('/admin/v1/apps/lead-caller/runbook', await consoleToken('erin'));
    await expectProblem(response, 404, 'NOT_FOUND');
  });
});

describe('gatehouse compliance runbook', () => {
  it('writes the Markdown runbook of a demo app through the running server, as the logged-in user', async () => {
    await loginAs(demo.dataDir, 'carol');
    try {
      const md = await gatehouseAsync(['compliance', 'runbook', 'call-notes', '--data-dir', demo.dataDir]);
      expect(md.stderr).toBe('');
      expect(md.code).toBe(0);
      expect(md.stdout).toContain('# Record of processing: call-notes (call-notes)');
      expect(md.stdout).toContain('## Data-subject requests');
      expect(md.stdout).toMatch(/\| `read:contact\.basic` \| reads contact records: /);

      const out = join(dir, 'lead-caller.html');
      const html = await gatehouseAsync([
        'compliance',
        'runbook',
        'lead-caller',
        '--format',
        'html',
        '--out',
        out,
        '--data-dir',
        demo.dataDir,
      ]);
      expect(html.code).toBe(0);
      expect(readFileSync(out, 'utf8')).toContain('SCC 2021/914 module 2');
    } finally {
      await logout(demo.dataDir);
    }
  });

  it('says in one line when the app does not exist', async () => {
    const result = await gatehouseAsync(['compliance', 'runbook', 'no-such-app', '--data-dir', demo.dataDir]);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
