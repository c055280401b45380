import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppStoreClient } from '../packages/sdk/src/index.js';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;
let alice: string;
let erin: string;
let carol: string;

const note = { data: { draft: 'call back about the renewal' }, data_classes: ['internal'] };

beforeAll(async () => {
  demo = await startDemo({
    config: {
      'appStore.maxDocumentBytes': 1024,
      'appStore.maxDocumentsPerUser': 3,
      'retention.purgeIntervalMs': 0,
    },
  });
  alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic app:store');
  erin = await demo.accessToken('erin', 'call-notes', 'read:contact.basic app:store');
  carol = await demo.accessToken('carol', 'console', 'audit:read');
});

afterAll(async () => {
  await demo?.stop();
});

const put = (token: string, path: string, json: unknown) =>
  demo.send('PUT', `/apps/v1/store/${path}`, token, { json });

describe('the governed app data store', () => {
  it('keeps a document for the app and user, lists it, replaces it and deletes it', async () => {
    const created = await put(alice, 'drafts/acme', note);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      collection: 'drafts',
      key: 'acme',
      data_classes: ['internal'],
    });
    const read = await demo.get('/apps/v1/store/drafts/acme', alice);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ data: note.data, subject_ids: [] });
    expect((await put(alice, 'drafts/acme', { ...note, data: { draft: 'done' } })).status).toBe(200);
    const list = (await (await demo.get('/apps/v1/store/drafts', alice)).json()) as {
      records: { key: string }[];
    };
    expect(list.records.map((r) => r.key)).toEqual(['acme']);
    expect(list.records[0]).not.toHaveProperty('data');
    expect((await demo.send('DELETE', '/apps/v1/store/drafts/acme', alice)).status).toBe(204);
    expect((await demo.get('/apps/v1/store/drafts/acme', alice)).status).toBe(404);
  });

  it('never shows one user the documents of another user of the same app (404, as if absent)', async () => {
    expect((await put(alice, 'drafts/private', note)).status).toBe(201);
    const other = await demo.get('/apps/v1/store/drafts/private', erin);
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(
      ((await (await demo.get('/apps/v1/store/drafts', erin)).json()) as { records: unknown[] }).records,
    ).toEqual([]);
    expect((await demo.send('DELETE', '/apps/v1/store/drafts/private', erin)).status).toBe(404);
    expect((await demo.get('/apps/v1/store/drafts/private', alice)).status).toBe(200);
  });

  it('never shows another app the documents of this one, even for the same user', async () => {
    const dave = await demo.accessToken('dave', 'console', 'maker admin');
    const manifest = {
      name: 'notes-mirror',
      owner: 'alice@example.com',
      purpose: 'keep drafts of my account notes',
      scopes: ['read:account.basic'],
      data_classes: ['internal'],
      retention_days: 30,
      expected_users: 12,
      telemetry: true,
      redirect_uris: ['http://localhost:5173/callback'],
      keeps_copies: { where: 'gatehouse' },
    };
    const registered = await demo.send('POST', '/admin/v1/apps', dave, { json: manifest });
    expect(registered.status).toBe(201);
    const app = (await registered.json()) as { client_id: string; state: string };
    expect(app.state).toBe('approved');
    const mirror = await demo.accessToken('alice', app.client_id, 'read:account.basic app:store');
    expect((await demo.get('/apps/v1/store/drafts/private', mirror)).status).toBe(404);
    expect((await put(mirror, 'drafts/private', note)).status).toBe(201);
    const own = (await (await demo.get('/apps/v1/store/drafts/private', alice)).json()) as { data: unknown };
    expect(own.data).toEqual(note.data);
  });

  it('gives app:store only to apps whose plan keeps copies in Gatehouse (invalid_scope otherwise)', async () => {
    const response = await demo.exchange('bob', 'pipeline-dashboard', 'read:account.basic app:store');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_scope' });
  });

  it('refuses a token without app:store with 403 SCOPE_MISSING', async () => {
    const plain = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const response = await demo.get('/apps/v1/store/drafts/private', plain);
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'SCOPE_MISSING' });
  });

  it('refuses a document over the size limit with 413 problem+json, and untagged documents with 422', async () => {
    const big = await put(alice, 'drafts/big', { data: 'x'.repeat(2000), data_classes: ['internal'] });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: 'STORE_DOCUMENT_TOO_LARGE', limit: 1024 });
    const untagged = await put(alice, 'drafts/untagged', { data: 'x' });
    expect(untagged.status).toBe(422);
    expect(await untagged.json()).toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('refuses a document past the per-user count with 409 STORE_LIMIT_REACHED, yet replaces existing ones', async () => {
    expect((await put(erin, 'a/1', note)).status).toBe(201);
    expect((await put(erin, 'a/2', note)).status).toBe(201);
    expect((await put(erin, 'b/3', note)).status).toBe(201);
    const over = await put(erin, 'b/4', note);
    expect(over.status).toBe(409);
    expect(await over.json()).toMatchObject({ code: 'STORE_LIMIT_REACHED', limit: 3 });
    expect((await put(erin, 'a/1', note)).status).toBe(200);
  });

  it('audits every access, allowed or refused, without the document in the event', async () => {
    const secret = 'sensitive-draft-4711';
    expect(
      (await put(alice, 'drafts/audited', { data: { text: secret }, data_classes: ['pii'] })).status,
    ).toBe(201);
    await demo.get('/apps/v1/store/drafts/audited', alice);
    await demo.get('/apps/v1/store/drafts/audited', erin);
    const answer = await demo.get('/audit/v1/events?app_id=call-notes&limit=1000', carol);
    const text = await answer.text();
    expect(text).not.toContain(secret);
    const events = (JSON.parse(text) as { records: { event: Record<string, unknown> }[] }).records.map(
      (r) => r.event,
    );
    const about = events.filter((e) => e.resource_id === 'drafts/audited');
    // A write's intent is durable before the store changes, its outcome after.
    expect(about.map((e) => [e.action, e.outcome, e.actor_id])).toEqual([
      ['store.write.intent', 'allow', 'alice@example.com'],
      ['store.write', 'allow', 'alice@example.com'],
      ['store.read', 'allow', 'alice@example.com'],
      ['store.read', 'deny', 'erin@example.com'],
    ]);
    expect(about[1].reason).toContain('classes pii');
  });

  it('is reachable through the SDK client: put, get, list, delete, a missing key as undefined', async () => {
    const store = createAppStoreClient({
      baseUrl: demo.url,
      tokens: { accessToken: async () => alice, renew: async () => alice },
      request: { [oauth.allowInsecureRequests]: true },
    });
    const stored = await store.put('sdk', 'k1', { n: 1 }, { dataClasses: ['internal'] });
    expect(stored).toMatchObject({ collection: 'sdk', key: 'k1', data_classes: ['internal'] });
    expect(await store.get('sdk', 'k1')).toMatchObject({ data: { n: 1 } });
    expect((await store.list('sdk')).records.map((r) => r.key)).toEqual(['k1']);
    await store.delete('sdk', 'k1');
    expect(await store.get('sdk', 'k1')).toBeUndefined();
  });
});
