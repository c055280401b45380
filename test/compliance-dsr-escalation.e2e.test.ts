import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;
let receiver: Server;
let attempts = 0;

beforeAll(async () => {
  // An app keeping copies whose webhook never acknowledges.
  receiver = createServer((_request, response) => {
    attempts += 1;
    response.writeHead(500).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/dsr`;
  demo = await startDemo({
    config: {
      dsr: { webhookSecret: 'dsr-webhook-secret-for-tests', acknowledgeDays: 0 },
      'retention.purgeIntervalMs': 200,
    },
  });
  const dave = await demo.accessToken('dave', 'console', 'maker admin');
  const registered = await demo.send('POST', '/admin/v1/apps', dave, {
    json: {
      name: 'silent-mirror',
      owner: 'dave@example.com',
      purpose: 'mirror accounts into a warehouse that never answers',
      scopes: ['read:account.basic'],
      data_classes: ['internal'],
      retention_days: 30,
      expected_users: 3,
      telemetry: true,
      keeps_copies: { where: 'app', dsr_webhook: hook },
    },
  });
  expect(registered.status).toBe(201);
});

afterAll(async () => {
  await demo?.stop();
  receiver?.close();
});

describe('a data-subject request an app keeping copies does not acknowledge', () => {
  it('waits, is retried by the scheduled sweep, and is escalated once overdue (audited)', async () => {
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const page = (await (await demo.get('/crm/v1/contacts?limit=1', alice)).json()) as {
      records: { id: string }[];
    };
    const response = await demo.send('POST', '/admin/v1/dsr', dave, {
      json: { kind: 'deletion', contact_id: page.records[0].id },
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as { id: string; state: string };
    expect(created.state).toBe('waiting');
    let found = { state: '', webhooks: [] as { state: string; attempts: number }[] };
    for (let i = 0; i < 100 && found.state !== 'escalated'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      found = (await (await demo.get(`/admin/v1/dsr/${created.id}`, dave)).json()) as typeof found;
    }
    expect(found.state).toBe('escalated');
    expect(found.webhooks[0]).toMatchObject({ state: 'escalated' });
    expect(attempts).toBeGreaterThanOrEqual(2);
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const events = await (await demo.get('/audit/v1/events?limit=1000', carol)).text();
    expect(events).toContain('compliance.dsr.escalate');
    const report = await demo.get(`/admin/v1/dsr/${created.id}/report`, dave);
    expect(report.status).toBe(404);
  });
});
