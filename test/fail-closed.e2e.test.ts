import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, withTestDatabase } from './support/database.js';
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

    const store = await refuseAuditWrites(demo.dataDir);
    try {
      const refused = await demo.get('/crm/v1/contacts?limit=1', alice);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBeTruthy();
      const body = await refused.text();
      expect(JSON.parse(body)).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      expect(body).not.toContain(records[0]?.last_name as string);
    } finally {
      await store.restore();
    }
    expect((await demo.get('/crm/v1/contacts?limit=1', alice)).status).toBe(200);
  });
});

/** A trigger that makes every insert into audit_events fail, as a full disk would; `restore` drops it. */
async function refuseAuditWrites(dataDir: string): Promise<{ restore(): Promise<void> }> {
  if (onPostgres) {
    await withTestDatabase(dataDir, (client) =>
      client.query(`
        create function audit_down() returns trigger language plpgsql as $$ begin raise exception 'disk full'; end $$;
        create trigger audit_down before insert on audit_events execute function audit_down();`),
    );
    return {
      restore: () =>
        withTestDatabase(dataDir, async (client) => {
          await client.query('drop trigger audit_down on audit_events; drop function audit_down()');
        }),
    };
  }
  const db = new Database(join(dataDir, 'gatehouse.db'));
  db.exec(
    `create trigger audit_down before insert on audit_events begin select raise(abort, 'disk full'); end`,
  );
  return {
    async restore() {
      db.exec('drop trigger audit_down');
      db.close();
    },
  };
}
