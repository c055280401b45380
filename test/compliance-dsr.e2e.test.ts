import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync, loginAs } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

const secret = 'dsr-webhook-secret-for-tests';

let demo: Demo;
let receiver: Server;
let hookUrl: string;
/** What the app keeping copies received, and whether each signature checked out. */
const received: Array<{ body: Record<string, unknown>; signed: boolean }> = [];
let alice: string;
let bob: string;
let carol: string;
let dave: string;
let contactId: string;
let configFile: string;

const cli = (...args: string[]) =>
  gatehouseAsync([...args, '--data-dir', demo.dataDir, '--config', configFile]);

interface Dsr {
  id: string;
  state: string;
  subject: string;
  due_at: string;
  created_at: string;
  steps: { step: string; state: string; count?: number }[];
  webhooks: { app_id: string; state: string }[];
  close_event_index?: number;
}

beforeAll(async () => {
  // The app that keeps copies itself: checks the HMAC and acknowledges.
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const timestamp = String(request.headers['x-gatehouse-timestamp']);
      const expected = `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
      const given = String(request.headers['x-gatehouse-signature']);
      const signed =
        given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
      const parsed = JSON.parse(body) as Record<string, unknown>;
      received.push({ body: parsed, signed });
      response.writeHead(signed ? 200 : 401, { 'content-type': 'application/json' });
      response.end(JSON.stringify(signed ? { dsr_id: parsed.dsr_id, acknowledged: true } : {}));
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/dsr`;
  const dsr = { webhookSecret: secret };
  demo = await startDemo({ config: { dsr, 'retention.purgeIntervalMs': 0 } });
  configFile = join(demo.dataDir, 'dsr.json');
  writeFileSync(configFile, JSON.stringify({ dsr }));
  dave = await demo.accessToken('dave', 'console', 'maker admin');
  carol = await demo.accessToken('carol', 'console', 'audit:read');
  const registered = await demo.send('POST', '/admin/v1/apps', dave, {
    json: {
      name: 'crm-mirror',
      owner: 'dave@example.com',
      purpose: 'mirror accounts into the reporting warehouse',
      scopes: ['read:account.basic'],
      data_classes: ['internal'],
      retention_days: 30,
      expected_users: 3,
      telemetry: true,
      keeps_copies: { where: 'app', dsr_webhook: hookUrl },
    },
  });
  expect(registered.status).toBe(201);
  alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic app:store');
  bob = await demo.accessToken('bob', 'call-notes', 'read:contact.basic');
  const page = (await (await demo.get('/crm/v1/contacts?limit=2', alice)).json()) as {
    records: { id: string }[];
  };
  contactId = page.records[0].id;
  expect((await demo.get(`/crm/v1/contacts/${contactId}`, alice)).status).toBe(200);
  const doc = { data: { summary: 'asked for a callback' }, data_classes: ['pii'], subject_ids: [contactId] };
  expect((await demo.send('PUT', '/apps/v1/store/calls/c1', alice, { json: doc })).status).toBe(201);
  const unrelated = {
    data: { summary: 'other' },
    data_classes: ['internal'],
    subject_ids: [page.records[1].id],
  };
  expect((await demo.send('PUT', '/apps/v1/store/calls/c2', alice, { json: unrelated })).status).toBe(201);
  await loginAs(demo.dataDir, 'dave');
});

afterAll(async () => {
  await demo?.stop();
  receiver?.close();
});

describe('a data-subject deletion request, end to end', () => {
  let created: Dsr;

  beforeAll(async () => {
    const result = await cli('dsr', 'create', '--kind', 'deletion', '--contact', contactId, '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    created = JSON.parse(result.stdout) as Dsr;
  });

  it('completes at once when every app keeping copies acknowledges, due 30 days out under GDPR', () => {
    expect(created.state).toBe('completed');
    expect(Date.parse(created.due_at) - Date.parse(created.created_at)).toBe(30 * 86_400_000);
    expect(created.steps.map((s) => [s.step, s.state])).toEqual([
      ['crm', 'done'],
      ['app_store', 'done'],
      ['audit', 'done'],
    ]);
    expect(created.webhooks).toEqual([expect.objectContaining({ state: 'acknowledged' })]);
    expect(created.subject).toMatch(/^subj_[0-9a-f]{24}$/);
  });

  it('reached the CRM through the connector: the contact is gone', async () => {
    expect((await demo.get(`/crm/v1/contacts/${contactId}`, bob)).status).toBe(404);
  });

  it("reached the app store: the subject's documents are deleted, others kept", async () => {
    expect((await demo.get('/apps/v1/store/calls/c1', alice)).status).toBe(404);
    expect((await demo.get('/apps/v1/store/calls/c2', alice)).status).toBe(200);
  });

  it('reached the app keeping copies with a signed webhook naming the subject', () => {
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      signed: true,
      body: { dsr_id: created.id, kind: 'deletion', contact_id: contactId },
    });
  });

  it('pseudonymised the audit events about the subject, and the log still verifies', async () => {
    const answer = (await (await demo.get('/audit/v1/events?limit=1000', carol)).json()) as {
      records: { index: number }[];
      tombstones?: { event: { resource_id: string }; tombstone: { state: string; run: string } }[];
    };
    // Before the request closed; a later read of the deleted id is a new event about nobody.
    const before = answer.records.filter((r) => r.index < (created.close_event_index ?? 0));
    expect(JSON.stringify(before)).not.toContain(contactId);
    const rewritten = (answer.tombstones ?? []).filter((t) => t.tombstone.run === created.id);
    expect(rewritten.length).toBeGreaterThan(0);
    expect(
      rewritten.every(
        (t) => t.tombstone.state === 'pseudonymised' && t.event.resource_id === created.subject,
      ),
    ).toBe(true);
    const verified = await cli('audit', 'verify');
    expect(verified.stdout).toContain('audit log intact');
    expect(verified.code).toBe(0);
  });

  it('writes a closing report that verifies offline, and refuses one whose steps were edited', async () => {
    const file = join(demo.dataDir, 'dsr-report.json');
    const shown = await cli('dsr', 'show', created.id, '--report', file);
    expect(shown.code).toBe(0);
    const key = (await cli('audit', 'public-key')).stdout.trim();
    const verified = await gatehouseAsync(['compliance', 'verify-report', file, '--public-key', key]);
    expect(verified.stdout).toContain('report verifies: 1 dsr run(s)');
    expect(verified.code).toBe(0);
    const report = JSON.parse(readFileSync(file, 'utf8')) as {
      runs: { manifest: { webhooks: { state: string }[] } }[];
    };
    report.runs[0].manifest.webhooks[0].state = 'escalated';
    const forged = join(demo.dataDir, 'dsr-forged.json');
    writeFileSync(forged, JSON.stringify(report));
    const refused = await gatehouseAsync(['compliance', 'verify-report', forged, '--public-key', key]);
    expect(refused.code).toBe(1);
  });

  it('lists the request over HTTP for an auditor, and through the CLI', async () => {
    const listed = (await (await demo.get('/admin/v1/dsr', carol)).json()) as { records: Dsr[] };
    expect(listed.records.map((r) => r.id)).toContain(created.id);
    const shown = await cli('dsr', 'list');
    expect(shown.stdout).toContain(created.id);
  });

  it('names the subject in its own audit events only by pseudonym', async () => {
    const answer = (await (await demo.get('/audit/v1/events?limit=1000', carol)).json()) as {
      records: { event: { action: string } }[];
    };
    const own = answer.records.filter((r) => r.event.action.startsWith('compliance.dsr.'));
    expect(own.map((r) => r.event.action)).toContain('compliance.dsr.close');
    expect(JSON.stringify(own)).not.toContain(contactId);
    expect(JSON.stringify(own)).toContain(created.subject);
  });
});

describe('data-subject requests over HTTP', () => {
  it('exports an access request as one JSON document, found by e-mail, due 45 days out under CCPA', async () => {
    const page = (await (await demo.get('/crm/v1/contacts?limit=1', alice)).json()) as {
      records: { id: string }[];
    };
    const manager = await demo.accessToken('bob', 'call-notes', 'read:contact.basic read:contact.reach');
    const contact = (await (
      await demo.get(`/crm/v1/contacts/${page.records[0].id}?fields=email`, manager)
    ).json()) as { email: string };
    const response = await demo.send('POST', '/admin/v1/dsr', dave, {
      json: { kind: 'access', regime: 'ccpa', email: contact.email },
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as Dsr;
    expect(Date.parse(created.due_at) - Date.parse(created.created_at)).toBe(45 * 86_400_000);
    const exported = await demo.get(`/admin/v1/dsr/${created.id}/export`, dave);
    expect(exported.status).toBe(200);
    expect(await exported.json()).toMatchObject({
      format: 'gatehouse-dsr-export',
      crm: { contact: { id: page.records[0].id, email: contact.email } },
    });
  });

  it('refuses a subject the CRM does not hold (422), a reader creating one (403), and no token (401)', async () => {
    const unknown = await demo.send('POST', '/admin/v1/dsr', dave, {
      json: { kind: 'deletion', email: 'nobody@nowhere.example' },
    });
    expect(unknown.status).toBe(422);
    expect(await unknown.json()).toMatchObject({ code: 'DSR_SUBJECT_UNKNOWN' });
    const reader = await demo.send('POST', '/admin/v1/dsr', carol, {
      json: { kind: 'deletion', contact_id: 'x1' },
    });
    expect(reader.status).toBe(403);
    expect((await demo.send('POST', '/admin/v1/dsr', undefined, { json: {} })).status).toBe(401);
  });

  it('rectifies a contact through the connector', async () => {
    const page = (await (await demo.get('/crm/v1/contacts?limit=3', alice)).json()) as {
      records: { id: string }[];
    };
    const target = page.records[2].id;
    const response = await demo.send('POST', '/admin/v1/dsr', dave, {
      json: { kind: 'rectification', contact_id: target, changes: { title: 'Head of Purchasing' } },
    });
    expect(response.status).toBe(201);
    const read = (await (await demo.get(`/crm/v1/contacts/${target}?fields=title`, alice)).json()) as {
      title: string;
    };
    expect(read.title).toBe('Head of Purchasing');
  });
});
