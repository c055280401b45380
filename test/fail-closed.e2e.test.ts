import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync } from './support/cli.js';
import { onPostgres, openTestSql, testDatabaseEnvSync, withTestDatabase } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, json, ownAccountContact, requestIdOf, type Row } from './support/http.js';

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
  // Read from the store itself: a rep may not filter on a note body she is shown redacted (the view).
  const notesWithBody = (body: string) => storedNotesWithBody(demo.dataDir, body);

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

describe('the governed app store fails closed too', () => {
  it('an audit store that refuses every insert: a document is neither stored nor deleted (503)', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'app:store');
    const path = '/apps/v1/store/drafts/fail-closed';
    const put = (text: string) =>
      demo.send('PUT', path, alice, { json: { data: { text }, data_classes: ['internal'] } });
    expect((await put('kept as it was')).status).toBe(201);

    const store = await refuseAuditWrites(demo.dataDir);
    let refused: Response[];
    try {
      refused = [await put('never stored'), await demo.send('DELETE', path, alice)];
    } finally {
      await store.restore();
    }
    for (const response of refused) {
      expect(response.status).toBe(503);
      expect(await json<{ code: string }>(response)).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    }
    const kept = await demo.get(path, alice);
    expect(kept.status).toBe(200);
    expect(await json<{ data: unknown }>(kept)).toMatchObject({ data: { text: 'kept as it was' } });
  });
});

describe('kill -9 in the middle of writes', () => {
  it('leaves no CRM change without its event, and no retry with the same key writes twice', async () => {
    const callNotes = 'read:account.basic read:contact.basic read:note.basic write:contact.note';
    // Token and contact from an in-process server, then the same data dir and port served by a process
    // of its own, which this test can kill.
    const first = await startDemo({ keepDataDir: true });
    const { dataDir } = first;
    try {
      const token = await first.accessToken('alice', 'call-notes', callNotes);
      const contact = await ownAccountContact(first, token, 'alice@example.com');
      const base = first.url;
      await first.stop();
      const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
      const child = spawn(
        process.execPath,
        [bin, 'serve', '--demo', '--port', new URL(base).port, '--data-dir', dataDir],
        {
          env: { PATH: process.env.PATH, GATEHOUSE_LOG_LEVEL: 'warn', ...testDatabaseEnvSync(dataDir) },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      await new Promise<void>((resolve, reject) => {
        let stderr = '';
        child.stderr.on('data', (chunk) => {
          stderr += String(chunk);
          if (stderr.includes('Gatehouse is ready')) resolve();
        });
        child.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const writes = 24;
      const write = (i: number, url: string, bearer: string) =>
        fetch(`${url}/crm/v1/notes`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${bearer}`,
            'content-type': 'application/json',
            'idempotency-key': `kill-9-${i}`,
          },
          body: JSON.stringify({ body: `kill -9 write ${i}`, contact_id: contact.id }),
        });
      const inFlight = Array.from({ length: writes }, (_, i) =>
        write(i, base, token).then(
          (response) => response.status,
          () => 'lost',
        ),
      );
      // Killed once the first write is answered, while the others are in flight.
      await Promise.race(inFlight);
      child.kill('SIGKILL');
      await exited;
      await Promise.all(inFlight);

      const again = await startDemo({ dataDir, keepDataDir: true });
      try {
        const verified = await gatehouseAsync(['audit', 'verify', '--data-dir', dataDir, '--json']);
        expect([0, 3]).toContain(verified.code);
        const report = JSON.parse(verified.stdout) as { ok: boolean; unfinishedWrites?: unknown[] };
        expect(report.ok).toBe(true);
        const carol = await again.accessToken('carol', 'console', 'audit:read');
        const created = await again.get('/audit/v1/events?limit=1000', carol);
        const events = (
          await json<{ records: Array<{ event: Record<string, string> }> }>(created)
        ).records.map((row) => row.event);
        const outcomes = events.filter((e) => e.action === 'crm.create' && e.outcome === 'allow').length;
        const alice = await again.accessToken('alice', 'call-notes', callNotes);
        const stored = async (i: number) => (await storedNotesWithBody(dataDir, `kill -9 write ${i}`)).length;
        const counts = await Promise.all(Array.from({ length: writes }, (_, i) => stored(i)));
        // Every note the CRM holds has its outcome, or its intent reported as unfinished.
        const notes = counts.reduce((sum, n) => sum + n, 0);
        expect(notes).toBeLessThanOrEqual(outcomes + (report.unfinishedWrites?.length ?? 0));
        // The client retries everything with its keys: a replay, a write that never happened made once,
        // or 409 for a write cut midway; never a second note.
        for (let i = 0; i < writes; i++) {
          expect([201, 409]).toContain((await write(i, again.url, alice)).status);
        }
        const after = await Promise.all(Array.from({ length: writes }, (_, i) => stored(i)));
        for (const n of after) expect(n).toBeLessThanOrEqual(1);
      } finally {
        await again.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
    // Three servers start in turn (one a process of its own), each seeding nothing but opening everything.
  }, 90_000);
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
  const db = new Database(join(dataDir, 'audit.db'));
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

/** The stored notes with exactly this body, read from the CRM's own table. */
async function storedNotesWithBody(dataDir: string, body: string): Promise<Row[]> {
  const db = await openTestSql(dataDir);
  try {
    return await db.all<Row>('select id from crm_notes where body = ?', body);
  } finally {
    await db.close();
  }
}
