import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import {
  auditEventsOf,
  expectProblem,
  json,
  ownAccountContact,
  requestIdOf,
  type Page,
  type Row,
} from './support/http.js';

// Detection's containment (throttle, revoke, suspend) would answer this suite's deliberate refusals and
// bulk reads; it has suites of its own, so it is off here.
const quietDetection = { 'detect.enabled': false };

/**
 * Writes through the gateway over real HTTP: the call-notes app logs call notes, and every hostile
 * variant of a write is refused with the right status and leaves an audit event. This demo redacts US
 * SSNs in incoming notes (config gateway.dlp.incoming.us_ssn) and refuses payment cards (the default).
 */

const callNotes = 'read:account.basic read:contact.basic read:note.basic write:contact.note';

let demo: Demo;
let alice: string;
let erin: string;
let bob: string;
let aliceReadOnly: string;
let carol: string;
let aliceContact: Row;
let erinContact: Row;
/** Request ids of every request made here, with the outcome its audit event must carry. */
const audited: Array<{ requestId: string; outcome: string; action: string }> = [];

beforeAll(async () => {
  demo = await startDemo({ config: { ...quietDetection, 'gateway.dlp.incoming.us_ssn': 'redact' } });
  [alice, erin, bob, aliceReadOnly, carol] = await Promise.all([
    demo.accessToken('alice', 'call-notes', callNotes),
    demo.accessToken('erin', 'call-notes', callNotes),
    demo.accessToken('bob', 'call-notes', callNotes),
    demo.accessToken('alice', 'call-notes', 'read:contact.basic read:note.basic'),
    demo.accessToken('carol', 'console', 'audit:read'),
  ]);
  aliceContact = await ownAccountContact(demo, alice, 'alice@example.com');
  erinContact = (await json<Page>(await demo.get('/crm/v1/contacts?limit=1', erin))).records[0] as Row;
});

afterAll(async () => {
  await demo?.stop();
});

/** Sends a request and remembers it, so the last test can check that each one left an audit event. */
async function call(
  expected: { outcome: string; action: string },
  method: string,
  path: string,
  token: string | undefined,
  init?: Parameters<Demo['send']>[3],
): Promise<Response> {
  const response = await demo.send(method, path, token, init);
  audited.push({ requestId: requestIdOf(response), ...expected });
  return response;
}

const create = (token: string, json: unknown, expectedOutcome = 'allow') =>
  call({ outcome: expectedOutcome, action: 'crm.create' }, 'POST', '/crm/v1/notes', token, { json });

async function newNote(body: string): Promise<{ id: string; etag: string }> {
  const response = await create(alice, { body, contact_id: aliceContact.id });
  expect(response.status).toBe(201);
  const note = await json<Row>(response);
  return { id: String(note.id), etag: response.headers.get('etag') as string };
}

/**
 * Notes whose body is exactly `body`, read from the store: how a test proves nothing was stored (alice
 * cannot filter on a text the gateway may show her redacted).
 */
async function notesWithBody(body: string): Promise<Row[]> {
  const db = await openTestSql(demo.dataDir);
  try {
    return await db.all<Row>('select id from crm_notes where body = ?', body);
  } finally {
    await db.close();
  }
}

describe('Idempotency-Key: a retried write is answered once, never applied twice', () => {
  const withKey = (key: string, extra: Record<string, string> = {}) => ({ 'idempotency-key': key, ...extra });

  it('a create retried with its key replays the first answer; one record exists', async () => {
    const send = () =>
      call({ outcome: 'allow', action: 'crm.create' }, 'POST', '/crm/v1/notes', alice, {
        json: { body: 'idempotent create', contact_id: aliceContact.id },
        headers: withKey('create-7f3a'),
      });
    const first = await send();
    const retry = await send();
    expect([first.status, retry.status]).toEqual([201, 201]);
    const [a, b] = [await json<Row>(first), await json<Row>(retry)];
    expect(b).toEqual(a);
    expect(retry.headers.get('location')).toBe(first.headers.get('location'));
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await notesWithBody('idempotent create')).toHaveLength(1);
    const [replayed] = (await auditEventsOf(demo, carol, requestIdOf(retry))).map((row) => row.event);
    expect(replayed?.reason).toBe(`replayed the answer of request ${requestIdOf(first)}`);
  });

  it('the same key with another body is refused (422); another user may use the same key', async () => {
    const reused = await call({ outcome: 'deny', action: 'crm.create' }, 'POST', '/crm/v1/notes', alice, {
      json: { body: 'another body', contact_id: aliceContact.id },
      headers: withKey('create-7f3a'),
    });
    await expectProblem(reused, 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await notesWithBody('another body')).toEqual([]);
    const erins = await call({ outcome: 'allow', action: 'crm.create' }, 'POST', '/crm/v1/notes', erin, {
      json: { body: 'idempotent create', contact_id: erinContact.id },
      headers: withKey('create-7f3a'),
    });
    expect(erins.status).toBe(201);
    expect(erins.headers.get('idempotent-replayed')).toBeNull();
  });

  it('an update and a delete retried with their keys answer as the first time, not 412 or 404', async () => {
    const note = await newNote('idempotent update');
    const patch = () =>
      call({ outcome: 'allow', action: 'crm.update' }, 'PATCH', `/crm/v1/notes/${note.id}`, alice, {
        json: { body: 'idempotent update, once' },
        headers: withKey('patch-1', { 'if-match': note.etag }),
      });
    const [first, retry] = [await patch(), await patch()];
    expect([first.status, retry.status]).toEqual([200, 200]);
    expect(retry.headers.get('etag')).toBe(first.headers.get('etag'));
    const remove = () =>
      call({ outcome: 'allow', action: 'crm.delete' }, 'DELETE', `/crm/v1/notes/${note.id}`, alice, {
        headers: withKey('delete-1', { 'if-match': first.headers.get('etag') ?? '' }),
      });
    expect([(await remove()).status, (await remove()).status]).toEqual([204, 204]);
    expect((await demo.get(`/crm/v1/notes/${note.id}`, alice)).status).toBe(404);
  });

  it('a malformed key is refused before anything is written', async () => {
    const response = await call({ outcome: 'deny', action: 'crm.create' }, 'POST', '/crm/v1/notes', alice, {
      json: { body: 'bad key', contact_id: aliceContact.id },
      headers: withKey('x'.repeat(256)),
    });
    await expectProblem(response, 422, 'INVALID_INPUT');
    expect(await notesWithBody('bad key')).toEqual([]);
  });
});

describe('call-notes logs a call note on its accounts', () => {
  it('creates a note: 201, Location, ETag, and the record as stored with the fields written', async () => {
    const response = await create(alice, {
      body: 'Call with the buyer: renewal in Q3.',
      contact_id: aliceContact.id,
    });
    expect(response.status).toBe(201);
    const note = await json<Row>(response);
    expect(note).toMatchObject({
      body: 'Call with the buyer: renewal in Q3.',
      contact_id: aliceContact.id,
      account_id: aliceContact.account_id,
      author: 'alice@example.com',
    });
    expect(note.id).toMatch(/^002/);
    // Territory and owner were set by the gateway and the connector, and read:note.basic does not open them.
    expect(note).not.toHaveProperty('territory');
    expect(note).not.toHaveProperty('owner');
    expect(response.headers.get('location')).toBe(`/crm/v1/notes/${note.id}`);
    const etag = response.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);

    const read = await demo.get(`/crm/v1/notes/${note.id}`, alice);
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe(etag);
    expect(await json<Row>(read)).toMatchObject({
      body: 'Call with the buyer: renewal in Q3.',
      author: 'alice@example.com',
    });
  });

  it('sends RateLimit headers on a successful write', async () => {
    const response = await create(alice, { body: 'Left a voicemail.', contact_id: aliceContact.id });
    expect(response.status).toBe(201);
    expect(response.headers.get('ratelimit-policy')).toMatch(/^"user";q=\d+;w=\d+, "app";q=\d+;w=\d+, /);
    expect(response.headers.get('ratelimit')).toMatch(/^"user";r=\d+;t=\d+, "app";r=\d+;t=\d+, /);
  });
});

describe('mass assignment is refused with 422 naming the fields', () => {
  for (const [name, extra] of [
    ['id', { id: '002000000000001' }],
    ['owner', { owner: 'mallory@example.com' }],
    ['territory', { territory: 'NA' }],
    ['author', { author: 'bob@example.com' }],
    ['created_at', { created_at: '2020-01-01T00:00:00.000Z' }],
    ['an unknown field', { is_admin: true }],
  ] as const) {
    it(`a note that also sets ${name}`, async () => {
      const body = `mass assignment probe: ${name}`;
      const response = await create(alice, { body, contact_id: aliceContact.id, ...extra }, 'deny');
      const problem = await expectProblem(response, 422, 'INVALID_INPUT');
      expect(problem.fields).toEqual(Object.keys(extra));
      expect(await notesWithBody(body)).toEqual([]);
    });
  }

  it('a field of a write scope the token does not hold (opportunity_id with write:contact.note)', async () => {
    const response = await create(alice, { body: 'probe', opportunity_id: '006000000000001' }, 'deny');
    expect((await expectProblem(response, 422, 'INVALID_INPUT')).fields).toEqual(['opportunity_id']);
  });

  it('a write without any write scope is 403', async () => {
    const response = await create(aliceReadOnly, { body: 'probe', contact_id: aliceContact.id }, 'deny');
    await expectProblem(response, 403, 'SCOPE_MISSING');
  });

  it('a value of the wrong type is 422 naming the field, never echoing the value', async () => {
    const response = await create(
      alice,
      { body: { nested: 'secret-value-123' }, contact_id: aliceContact.id },
      'deny',
    );
    const problem = await expectProblem(response, 422, 'INVALID_INPUT');
    expect(JSON.stringify(problem)).not.toContain('secret-value-123');
  });
});

describe('bodies: JSON only, and capped', () => {
  it('an oversized body is 413, and recorded with its actor', async () => {
    const response = await call({ outcome: 'deny', action: 'crm.create' }, 'POST', '/crm/v1/notes', alice, {
      json: { body: 'x'.repeat(100_000), contact_id: aliceContact.id },
    });
    await expectProblem(response, 413, 'PAYLOAD_TOO_LARGE');
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event).toMatchObject({
      actor_id: 'alice@example.com',
      reason: 'PAYLOAD_TOO_LARGE',
      resource_type: 'note',
    });
  });

  for (const [type, body] of [
    ['text/plain', 'body=hello'],
    ['application/x-www-form-urlencoded', 'body=hello'],
    ['application/xml', '<note><body>hello</body></note>'],
  ] as const) {
    it(`a ${type} body is 415`, async () => {
      const response = await call({ outcome: 'deny', action: 'crm.create' }, 'POST', '/crm/v1/notes', alice, {
        body,
        headers: { 'content-type': type },
      });
      await expectProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });
  }

  it('malformed JSON is 422, and a JSON array is 422', async () => {
    const broken = await call({ outcome: 'deny', action: 'crm.create' }, 'POST', '/crm/v1/notes', alice, {
      body: '{"body": ',
      headers: { 'content-type': 'application/json' },
    });
    await expectProblem(broken, 422, 'INVALID_INPUT');
    const array = await create(alice, [{ body: 'x' }], 'deny');
    await expectProblem(array, 422, 'INVALID_INPUT');
  });
});

describe('the row filter applies to writes', () => {
  it("a note on another territory's contact is refused like one on a missing contact", async () => {
    const hidden = await create(alice, { body: 'probe', contact_id: erinContact.id }, 'deny');
    const missing = await create(alice, { body: 'probe', contact_id: '003000000099999' }, 'deny');
    const a = await expectProblem(hidden, 422, 'INVALID_INPUT');
    const b = await expectProblem(missing, 422, 'INVALID_INPUT');
    expect(a.detail).toBe(b.detail);
    expect(a.field).toBe('contact_id');
  });

  it("changing or deleting another territory's note is 404", async () => {
    const note = await newNote('EMEA only');
    const patch = await call(
      { outcome: 'deny', action: 'crm.update' },
      'PATCH',
      `/crm/v1/notes/${note.id}`,
      erin,
      {
        json: { body: 'taken over' },
        headers: { 'if-match': note.etag },
      },
    );
    await expectProblem(patch, 404, 'NOT_FOUND');
    const del = await call(
      { outcome: 'deny', action: 'crm.delete' },
      'DELETE',
      `/crm/v1/notes/${note.id}`,
      erin,
      {
        headers: { 'if-match': note.etag },
      },
    );
    await expectProblem(del, 404, 'NOT_FOUND');
  });

  it('a colleague of the same territory cannot change or delete a note they did not write (404)', async () => {
    const note = await newNote('mine, not bob’s');
    const patch = await call(
      { outcome: 'deny', action: 'crm.update' },
      'PATCH',
      `/crm/v1/notes/${note.id}`,
      bob,
      {
        json: { body: 'edited by bob' },
        headers: { 'if-match': note.etag },
      },
    );
    await expectProblem(patch, 404, 'NOT_FOUND');
  });
});

describe('optimistic concurrency with ETag / If-Match', () => {
  it('PATCH without If-Match is 428; with a stale ETag 412; with the current one 200 and a new ETag', async () => {
    const note = await newNote('first draft');
    const path = `/crm/v1/notes/${note.id}`;
    const missing = await call({ outcome: 'deny', action: 'crm.update' }, 'PATCH', path, alice, {
      json: { body: 'second draft' },
    });
    await expectProblem(missing, 428, 'PRECONDITION_REQUIRED');
    const wildcard = await call({ outcome: 'deny', action: 'crm.update' }, 'PATCH', path, alice, {
      json: { body: 'second draft' },
      headers: { 'if-match': '*' },
    });
    await expectProblem(wildcard, 428, 'PRECONDITION_REQUIRED');

    const updated = await call({ outcome: 'allow', action: 'crm.update' }, 'PATCH', path, alice, {
      json: { body: 'second draft' },
      headers: { 'if-match': note.etag },
    });
    expect(updated.status).toBe(200);
    expect(await json<Row>(updated)).toEqual({ id: note.id, body: 'second draft' });
    const etag = updated.headers.get('etag');
    expect(etag).toBeTruthy();
    expect(etag).not.toBe(note.etag);

    const stale = await call({ outcome: 'deny', action: 'crm.update' }, 'PATCH', path, alice, {
      json: { body: 'lost update' },
      headers: { 'if-match': note.etag },
    });
    await expectProblem(stale, 412, 'PRECONDITION_FAILED');
    expect((await json<Row>(await demo.get(path, alice))).body).toBe('second draft');
  });

  it('DELETE needs the current ETag too; the author deletes their note (204), then it is gone', async () => {
    const note = await newNote('to be deleted');
    const path = `/crm/v1/notes/${note.id}`;
    await expectProblem(
      await call({ outcome: 'deny', action: 'crm.delete' }, 'DELETE', path, alice),
      428,
      'PRECONDITION_REQUIRED',
    );
    const stale = await call({ outcome: 'deny', action: 'crm.delete' }, 'DELETE', path, alice, {
      headers: { 'if-match': '"AAAAAAAAAAAAAAAAAAAAAAAAAAA"' },
    });
    await expectProblem(stale, 412, 'PRECONDITION_FAILED');
    const deleted = await call({ outcome: 'allow', action: 'crm.delete' }, 'DELETE', path, alice, {
      headers: { 'if-match': note.etag },
    });
    expect(deleted.status).toBe(204);
    await expectProblem(await demo.get(path, alice), 404, 'NOT_FOUND');
  });

  it('only notes are deletable: deleting a contact is 403 naming the rule', async () => {
    const response = await call(
      { outcome: 'deny', action: 'crm.delete' },
      'DELETE',
      `/crm/v1/contacts/${aliceContact.id}`,
      alice,
      {
        headers: { 'if-match': '"x"' },
      },
    );
    expect((await expectProblem(response, 403, 'POLICY_DENIED')).rule).toBe('deletable-objects');
  });
});

describe('DLP on incoming note bodies', () => {
  it('a payment card number is refused (422 naming the kind, never the number) and nothing is stored', async () => {
    const body = 'Customer read out card 4111 1111 1111 1111 for the renewal';
    const response = await create(alice, { body, contact_id: aliceContact.id }, 'deny');
    const problem = await expectProblem(response, 422, 'DLP_REFUSED');
    expect(problem.kinds).toEqual(['payment_card']);
    expect(problem.field).toBe('body');
    expect(JSON.stringify(problem)).not.toContain('4111 1111');
    expect(await notesWithBody(body)).toEqual([]);
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event.reason).toBe('DLP_REFUSED: body holds payment_card');
    expect(JSON.stringify(row)).not.toContain('4111 1111');
  });

  it('a US SSN is redacted before it is stored when configuration says redact', async () => {
    const response = await create(alice, {
      body: 'Their SSN is 536-22-8174 per the form',
      contact_id: aliceContact.id,
    });
    expect(response.status).toBe(201);
    const note = await json<Row>(response);
    expect(note.body).toBe('Their SSN is [redacted:us_ssn] per the form');
    const stored = await json<Row>(await demo.get(`/crm/v1/notes/${note.id}`, alice));
    expect(stored.body).toBe('Their SSN is [redacted:us_ssn] per the form');
    // The intent first, then the outcome, under the same request id.
    const [intent, row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(intent?.event.action).toBe('crm.create.intent');
    expect(row?.event.reason).toBe('record created; incoming dlp redacted 1 (us_ssn)');
    expect(JSON.stringify(row)).not.toContain('8174');
  });

  it('formatting does not evade it: dotted, zero-width, Unicode-dashed, fullwidth and Arabic-Indic cards, dotted SSNs', async () => {
    const cards = [
      '4111.1111.1111.1111',
      '4111/1111/1111/1111',
      '4111\u00a01111\u00a01111\u00a01111',
      '4111\u200b1111\u200b1111\u200b1111',
      '4111\u20131111\u20131111\u20131111',
      '\uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11',
      '\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661',
    ];
    for (const written of cards) {
      const body = `card ${written} for the renewal`;
      const response = await create(alice, { body, contact_id: aliceContact.id }, 'deny');
      expect((await expectProblem(response, 422, 'DLP_REFUSED')).kinds, written).toEqual(['payment_card']);
      expect(await notesWithBody(body)).toEqual([]);
    }
    // This demo redacts SSNs: dotted and mixed separators are redacted like dashed ones.
    for (const written of ['536.22.8174', '536-22 8174', '536\u201322\u20138174']) {
      const response = await create(alice, {
        body: `SSN ${written} per the form`,
        contact_id: aliceContact.id,
      });
      expect(response.status).toBe(201);
      expect((await json<Row>(response)).body).toBe('SSN [redacted:us_ssn] per the form');
    }
  });

  it('a secret is refused when patched in as well', async () => {
    const note = await newNote('clean');
    const response = await call(
      { outcome: 'deny', action: 'crm.update' },
      'PATCH',
      `/crm/v1/notes/${note.id}`,
      alice,
      {
        json: { body: 'key AKIAIOSFODNN7EXAMPLE' },
        headers: { 'if-match': note.etag },
      },
    );
    expect((await expectProblem(response, 422, 'DLP_REFUSED')).kinds).toEqual(['secret']);
  });
});

describe('the audit trail', () => {
  it('every request above left an audit event with its action and outcome, and no body text', async () => {
    expect(audited.length).toBeGreaterThan(20);
    for (const { requestId, outcome, action } of audited) {
      const rows = await auditEventsOf(demo, carol, requestId);
      expect(rows.length, `${action} ${requestId}`).toBeGreaterThanOrEqual(1);
      expect(rows.at(-1)?.event).toMatchObject({ outcome, action, request_id: requestId });
      // Events only: a leaf hash or request id may hold any digits by chance.
      expect(JSON.stringify(rows.map((row) => row.event))).not.toMatch(
        /mass assignment probe|second draft|4111[ -]?1111/,
      );
    }
  });
});
