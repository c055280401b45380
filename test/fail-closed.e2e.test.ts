import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync } from './support/cli.js';
import { onPostgres, withTestDatabase } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, json, ownAccountContact, requestIdOf, type Page, type Row } from './support/http.js';

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

describe('writes fail closed: intent before the change, outcome after it', () => {
  const callNotes = 'read:account.basic read:contact.basic read:note.basic write:contact.note';
  let alice: string;
  let carol: string;
  let contact: Row;

  beforeAll(async () => {
    [alice, carol] = await Promise.all([
      demo.accessToken('alice', 'call-notes', callNotes),
      demo.accessToken('carol', 'console', 'audit:read'),
    ]);
    contact = await ownAccountContact(demo, alice, 'alice@example.com');
  });

  const post = (body: string, key?: string) =>
    demo.send('POST', '/crm/v1/notes', alice, {
      json: { body, contact_id: contact.id },
      headers: key ? { 'idempotency-key': key } : {},
    });
  const notesWithBody = async (body: string) =>
    (await json<Page>(await demo.get(`/crm/v1/notes?filter=${encodeURIComponent(`body=${body}`)}`, alice)))
      .records;

  it('an audit store that refuses every insert: create, update and delete change nothing (503)', async () => {
    const created = await post('fail-closed: kept as it was');
    expect(created.status).toBe(201);
    const note = await json<Row>(created);
    const etag = created.headers.get('etag') ?? '';

    const store = await refuseAuditWrites(demo.dataDir);
    let refused: Response[];
    try {
      refused = [
        await post('fail-closed: never stored', 'retry-after-outage'),
        await demo.send('PATCH', `/crm/v1/notes/${String(note.id)}`, alice, {
          json: { body: 'fail-closed: never written' },
          headers: { 'if-match': etag },
        }),
        await demo.send('DELETE', `/crm/v1/notes/${String(note.id)}`, alice, {
          headers: { 'if-match': etag },
        }),
      ];
    } finally {
      await store.restore();
    }
    for (const response of refused) {
      expect(response.status).toBe(503);
      expect(await json<{ code: string }>(response)).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    }
    expect(await notesWithBody('fail-closed: never stored')).toEqual([]);
    const kept = await demo.get(`/crm/v1/notes/${String(note.id)}`, alice);
    expect(kept.status).toBe(200);
    expect(await json<Row>(kept)).toMatchObject({ body: 'fail-closed: kept as it was' });
    expect(kept.headers.get('etag')).toBe(etag);
    // Nothing happened, so the key is free: the retry after the outage writes, once.
    expect((await post('fail-closed: never stored', 'retry-after-outage')).status).toBe(201);
    expect(await notesWithBody('fail-closed: never stored')).toHaveLength(1);
  });

  it('an outcome that cannot be recorded: the intent names the change, audit verify reports it, a retry replays', async () => {
    const store = await refuseAuditWrites(demo.dataDir, 'crm.create');
    let first: Response;
    try {
      first = await post('fail-closed: outcome lost', 'outcome-lost');
    } finally {
      await store.restore();
    }
    expect(first.status).toBe(503);
    const requestId = requestIdOf(first);
    // The change happened and its intent is in the log: never a CRM change without an event.
    const stored = await notesWithBody('fail-closed: outcome lost');
    expect(stored).toHaveLength(1);
    const events = await auditEventsOf(demo, carol, requestId);
    expect(events.map((row) => row.event.action)).toEqual(['crm.create.intent']);
    expect(events[0]?.event).toMatchObject({ app_id: 'call-notes', actor_id: 'alice@example.com' });

    const verified = await gatehouseAsync(['audit', 'verify', '--data-dir', demo.dataDir, '--json']);
    expect(verified.code).toBe(3);
    const report = JSON.parse(verified.stdout) as {
      ok: boolean;
      unfinishedWrites: Array<Record<string, unknown>>;
    };
    expect(report.ok).toBe(true);
    expect(report.unfinishedWrites).toEqual([
      expect.objectContaining({ request_id: requestId, action: 'crm.create', resource_type: 'note' }),
    ]);

    // The client retries with its key: the first answer comes back, nothing is written twice.
    const retry = await post('fail-closed: outcome lost', 'outcome-lost');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await json<Row>(retry)).toMatchObject({ id: stored[0]?.id });
    expect(await notesWithBody('fail-closed: outcome lost')).toHaveLength(1);
  });
});

/**
 * A trigger that makes inserts into audit_events fail, as a full disk would: every insert, or only the
 * events of one action (`crm.create`: the outcome of a create, not its `crm.create.intent`). `restore`
 * drops it.
 */
async function refuseAuditWrites(dataDir: string, action?: string): Promise<{ restore(): Promise<void> }> {
  // Canonical JSON sorts keys: `"action":"crm.create",` is that action exactly, never its intent.
  const only = action ? `'%"action":"${action}",%'` : undefined;
  if (onPostgres) {
    await withTestDatabase(dataDir, (client) =>
      client.query(`
        create function audit_down() returns trigger language plpgsql as $$ begin raise exception 'disk full'; end $$;
        create trigger audit_down before insert on audit_events
          for each row ${only ? `when (new.event like ${only})` : ''} execute function audit_down();`),
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
    `create trigger audit_down before insert on audit_events ${only ? `when new.event like ${only}` : ''}
     begin select raise(abort, 'disk full'); end`,
  );
  return {
    async restore() {
      db.exec('drop trigger audit_down');
      db.close();
    },
  };
}
