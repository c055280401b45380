import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;

beforeAll(async () => {
  demo = await startDemo();
});

afterAll(async () => {
  await demo?.stop();
});

describe('fail closed', () => {
  it('serves no CRM data that was not audited: an audit store that refuses writes means 503', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const before = await demo.get('/crm/v1/contacts?limit=1', alice);
    expect(before.status).toBe(200);
    const { records } = (await before.json()) as { records: { last_name: string }[] };

    const db = new Database(join(demo.dataDir, 'gatehouse.db'));
    db.exec(
      `create trigger audit_down before insert on audit_events begin select raise(abort, 'disk full'); end`,
    );
    try {
      const refused = await demo.get('/crm/v1/contacts?limit=1', alice);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBeTruthy();
      const body = await refused.text();
      expect(JSON.parse(body)).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      expect(body).not.toContain(records[0]?.last_name as string);
    } finally {
      db.exec('drop trigger audit_down');
      db.close();
    }
    expect((await demo.get('/crm/v1/contacts?limit=1', alice)).status).toBe(200);
  });
});
