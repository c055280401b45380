import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditOrigin, openAuditLog, type AuditEvent, type AuditLog } from '../audit/index.js';
import { loadConfig } from '../config/index.js';
import { createEmbeddedCrm, crmObjects, seedCrm, type CrmConnector } from '../crm/index.js';
import { openLocalSecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import {
  changeOverride,
  classificationTable,
  effectiveClass,
  effectiveClasses,
  parseFieldRef,
  sampledClass,
  sampleFields,
  sampleObject,
  type AuditSink,
} from './index.js';
import { classifyDb } from './tables.js';
import { testDatabase } from '../../test/support/database.js';

const invalidInput = expect.objectContaining({ code: 'INVALID_INPUT' });

describe('sampledClass and effectiveClass', () => {
  const body = { name: 'body', type: 'string' as const, dataClass: 'internal' as const };
  const owner = { name: 'owner', type: 'string' as const, dataClass: 'internal' as const };

  it('raises a free-text field to the class of what it holds', () => {
    expect(sampledClass(body, { email: 3 })).toBe('pii');
    expect(sampledClass(body, { phone: 1 })).toBe('pii');
    expect(sampledClass(body, { email: 2, payment_card: 1 })).toBe('financial');
    expect(sampledClass(body, { secret: 1, email: 9 })).toBe('secret');
    expect(sampledClass(body, {})).toBeUndefined();
    expect(sampledClass(body, { email: 0 })).toBeUndefined();
  });

  it('leaves structured fields to their metadata (an owner column of employee e-mails stays internal)', () => {
    expect(sampledClass(owner, { email: 200 })).toBeUndefined();
  });

  it('never lowers a class by sampling', () => {
    expect(sampledClass({ ...body, dataClass: 'financial' }, { email: 5 })).toBeUndefined();
    expect(effectiveClass('financial', undefined, undefined)).toBe('financial');
  });

  it('lets an override win either way', () => {
    expect(effectiveClass('internal', 'pii', 'internal')).toBe('internal');
    expect(effectiveClass('internal', undefined, 'health')).toBe('health');
  });
});

describe('classification over a real store', () => {
  let dir: string;
  let store: Store;
  let crm: CrmConnector;
  let audit: AuditLog;
  const emails = Array.from({ length: 10 }, (_, i) => `buyer${i}@acme-widgets.example`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-classify-'));
    store = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: dir, ...(await testDatabase(dir)) } }),
    );
    crm = createEmbeddedCrm(store.db);
    await seedCrm(store.db, {
      contacts: 60,
      seed: 7,
      owners: [{ email: 'alice@example.com', territory: 'EMEA' }],
    });
    const { records } = await crm.query('contact', { fields: [], where: [], limit: 1 });
    for (const email of emails) {
      await crm.create('note', {
        contact_id: records[0]!.id as string,
        author: 'alice@example.com',
        body: `Spoke to their buyer; send the quote to ${email} by Friday.`,
      });
    }
    audit = await openAuditLog({ db: store.db, secrets: openLocalSecretStore(dir), origin: auditOrigin });
  });

  afterAll(async () => {
    await audit?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('classifies a notes field seeded with e-mails as pii by sampling, with counts as evidence', async () => {
    const { records } = await sampleFields(store.db, crm, { size: 1000 });
    expect(records).toBeGreaterThan(60);
    const rows = await classificationTable(store.db, crm);
    const body = rows.find((r) => r.object === 'note' && r.field === 'body')!;
    expect(body).toMatchObject({ metadata: 'internal', sampled: 'pii', effective: 'pii' });
    expect(body.sample!.evidence.email).toBe(emails.length);
    const email = rows.find((r) => r.object === 'contact' && r.field === 'email')!;
    expect(email.sample!.evidence.email).toBe(email.sample!.sampled);
    const owner = rows.find((r) => r.object === 'account' && r.field === 'owner')!;
    expect(owner).toMatchObject({ metadata: 'internal', effective: 'internal' });
    expect(owner.sample!.evidence.email).toBeGreaterThan(0);
  });

  it('stores counts only, never a sampled value', async () => {
    const stored = await classifyDb(store.db).selectFrom('classify_samples').selectAll().execute();
    const text = JSON.stringify(stored);
    for (const email of emails) expect(text).not.toContain(email);
    expect(text).not.toContain('@');
  });

  it('reads at most the sample size through the connector', async () => {
    const { records, fields } = await sampleObject(crm, 'note', 5);
    expect(records).toBe(5);
    expect(fields.map((f) => f.field)).toEqual(['territory', 'owner', 'body', 'author']);
  });

  it('gives the effective class of every field for the policy enrichment', async () => {
    const classes = await effectiveClasses(store.db, crm);
    expect(classes['note.body']).toBe('pii');
    expect(classes['contact.national_id']).toBe('pii');
    expect(classes['opportunity.amount']).toBe('financial');
    expect(classes['account.industry']).toBe('public');
    expect(Object.keys(classes)).toHaveLength(
      crmObjects.reduce((n, o) => n + crm.describe(o).fields.length, 0),
    );
  });

  it('applies an admin override and records who, what and why in the audit trail', async () => {
    const ref = parseFieldRef('note.body', crm);
    const row = await changeOverride(store.db, crm, audit, {
      ref,
      dataClass: 'internal',
      reason: 'the addresses are our distributors, published on our website',
      actor: 'dave@example.com',
    });
    expect(row).toMatchObject({
      effective: 'internal',
      override: { dataClass: 'internal', actor: 'dave@example.com' },
    });
    expect((await effectiveClasses(store.db, crm))['note.body']).toBe('internal');

    await audit.latestCheckpoint();
    const { records } = await audit.events({ limit: 1000 });
    const event = records.map((r) => r.event).find((e) => e.action === 'classify.override');
    expect(event).toMatchObject({
      actor_id: 'dave@example.com',
      actor_role: 'admin',
      resource_type: 'field',
      resource_id: 'note.body',
      outcome: 'allow',
    });
    expect(event!.reason).toBe(
      'effective class pii -> internal (metadata internal): the addresses are our distributors, published on our website',
    );
  });

  it('clears an override, back to what sampling says, also audited', async () => {
    const ref = parseFieldRef('note.body', crm);
    const row = await changeOverride(store.db, crm, audit, {
      ref,
      dataClass: undefined,
      reason: 'distributor list moved out of notes',
      actor: 'dave@example.com',
    });
    expect(row.override).toBeUndefined();
    expect(row.effective).toBe('pii');
    const { records } = await audit.events({ limit: 1000 });
    expect(records.map((r) => r.event.action)).toContain('classify.override_clear');
    await expect(
      changeOverride(store.db, crm, audit, {
        ref,
        dataClass: undefined,
        reason: 'again',
        actor: 'dave@example.com',
      }),
    ).rejects.toThrow(invalidInput);
  });

  it('undoes an override whose audit event cannot be written (fail closed)', async () => {
    const broken: AuditSink = {
      async append(_event: AuditEvent) {
        throw new Error('disk full');
      },
    };
    const ref = parseFieldRef('contact.email', crm);
    await expect(
      changeOverride(store.db, crm, broken, {
        ref,
        dataClass: 'public',
        reason: 'test',
        actor: 'mallory@example.com',
      }),
    ).rejects.toThrow('disk full');
    expect((await effectiveClasses(store.db, crm))['contact.email']).toBe('pii');
  });

  it('refuses unknown objects, fields and classes, and a missing reason, naming what is allowed', async () => {
    expect(() => parseFieldRef('lead.email', crm)).toThrow(invalidInput);
    expect(() => parseFieldRef('contact.ssn', crm)).toThrow(/its fields: id, territory/);
    expect(() => parseFieldRef('contact', crm)).toThrow(invalidInput);
    const ref = parseFieldRef('contact.title', crm);
    await expect(
      changeOverride(store.db, crm, audit, {
        ref,
        dataClass: 'confidential',
        reason: 'why not',
        actor: 'a@b.c',
      }),
    ).rejects.toThrow(/use one of public, internal, pii, financial, health, secret/);
    await expect(
      changeOverride(store.db, crm, audit, { ref, dataClass: 'pii', reason: ' ', actor: 'a@b.c' }),
    ).rejects.toThrow(invalidInput);
  });
});
