/**
 * Data-subject requests (GDPR Art. 15–17 and 20, CCPA/CPRA): access/export, deletion and rectification
 * of one CRM contact, found by id or e-mail. A request fans out to the CRM (through the connector), the
 * governed app store and every app that keeps copies itself (a signed webhook it must acknowledge);
 * the audit events about the subject are pseudonymised (bodies rewritten, leaf hashes kept). Every step
 * appends its own event, which names the subject only by its keyed pseudonym; the closing event commits
 * to the manifest of what was done, so the closing report verifies offline (report.ts).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { rewriteEventBodies, type AuditEvent, type AuditLog, type BodyRewrite } from '../audit/index.js';
import type { DsrConfig } from '../config/index.js';
import type { CrmConnector, CrmRecord } from '../crm/index.js';
import { ComplianceError, InputError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';
import { documentHash, manifestDigest } from './purge.js';
import { complianceDb, type ComplianceTables } from './tables.js';
import { postDsrWebhook } from './webhook.js';

export type DsrKind = 'access' | 'deletion' | 'rectification';
export type DsrRegime = 'gdpr' | 'ccpa';
export type DsrState = 'in_progress' | 'waiting' | 'escalated' | 'completed';

export interface DsrStep {
  step: string;
  state: 'done' | 'pending' | 'escalated';
  detail: string;
  at: string;
  count?: number;
}

export interface DsrWebhookState {
  app_id: string;
  url: string;
  state: 'pending' | 'acknowledged' | 'escalated';
  attempts: number;
  detail: string;
}

export interface DsrManifest {
  dsr: string;
  kind: DsrKind;
  regime: DsrRegime;
  subject: string;
  closed_at: string;
  steps: Array<Pick<DsrStep, 'step' | 'state' | 'count'>>;
  documents: Array<{ hash: string; classes: string[] }>;
  /** The audit events about the subject, pseudonymised: index and leaf hash (still in the tree). */
  events: Array<{ index: number; leaf_hash: string }>;
  webhooks: Array<{ app_id: string; state: string }>;
}

export interface DsrRecord {
  id: string;
  kind: DsrKind;
  regime: DsrRegime;
  subject: string;
  state: DsrState;
  requested_by: string;
  created_at: string;
  due_at: string;
  closed_at: string | null;
  steps: DsrStep[];
  webhooks: DsrWebhookState[];
  /** The index of the closing event, once closed: the closing report proves it. */
  close_event_index?: number;
}

interface Detail {
  changes?: CrmRecord;
  steps: DsrStep[];
  webhooks: DsrWebhookState[];
  manifest?: DsrManifest;
  close_event_index?: number;
  documents: DsrManifest['documents'];
  events: DsrManifest['events'];
}

export interface DsrRequest {
  kind: DsrKind;
  regime: DsrRegime;
  contact_id?: string;
  email?: string;
  /** Rectification: the contact fields to set. */
  changes?: CrmRecord;
}

/** An app that keeps copies of CRM data outside Gatehouse, and where it takes DSR webhooks. */
export interface CopyKeeper {
  appId: string;
  webhook: string;
}

export interface DsrDeps {
  db: Db;
  audit: AuditLog;
  crm: CrmConnector;
  secrets: SecretStore;
  config: DsrConfig;
  copyKeepers: () => Promise<CopyKeeper[]>;
  now?: () => Date;
}

export interface DsrDesk {
  create(request: DsrRequest, by: string): Promise<DsrRecord>;
  get(id: string): Promise<DsrRecord>;
  list(q: {
    state?: string;
    cursor?: string;
    limit?: number;
  }): Promise<{ records: DsrRecord[]; next_cursor?: string }>;
  /** The subject's data as one JSON document (access requests, while open or closed). */
  exportOf(id: string): Promise<Record<string, unknown>>;
  /** The manifest and closing event of a closed request, for its report. */
  closing(id: string): Promise<{ event_index: number; manifest: DsrManifest }>;
  /** Retries webhooks not yet acknowledged; escalates those overdue and requests past their due date. */
  sweep(): Promise<{ retried: number; escalated: number; closed: number }>;
}

const kinds: readonly string[] = ['access', 'deletion', 'rectification'];
const regimes: readonly string[] = ['gdpr', 'ccpa'];
const states: readonly string[] = ['in_progress', 'waiting', 'escalated', 'completed'];
const idPattern = /^[A-Za-z0-9_-]{1,64}$/;
const day = 86_400_000;
const auditPage = 1000;
const pseudonymKeyName = 'compliance/pseudonym-key';

/** Validates a POST /admin/v1/dsr body. Attacker-controlled (an admin's input, but still input). */
export function parseDsrRequest(body: unknown): DsrRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InputError('send a JSON object { kind, regime, contact_id | email, changes? }');
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter(
    (k) => !['kind', 'regime', 'contact_id', 'email', 'changes'].includes(k),
  );
  if (unknown.length > 0) throw new InputError('unknown member(s) in the request', { members: unknown });
  if (!kinds.includes(b.kind as string)) {
    throw new InputError('kind must be access, deletion or rectification', { parameter: 'kind' });
  }
  const regime = b.regime ?? 'gdpr';
  if (!regimes.includes(regime as string))
    throw new InputError('regime must be gdpr or ccpa', { parameter: 'regime' });
  const hasId = b.contact_id !== undefined;
  const hasEmail = b.email !== undefined;
  if (hasId === hasEmail) throw new InputError('name the subject by contact_id or by email (one of them)');
  if (hasId && (typeof b.contact_id !== 'string' || !idPattern.test(b.contact_id))) {
    throw new InputError('contact_id is not a CRM id', { parameter: 'contact_id' });
  }
  if (hasEmail && (typeof b.email !== 'string' || b.email.length > 254 || !b.email.includes('@'))) {
    throw new InputError('email is not an e-mail address', { parameter: 'email' });
  }
  let changes: CrmRecord | undefined;
  if (b.kind === 'rectification') {
    const c = b.changes;
    if (typeof c !== 'object' || c === null || Array.isArray(c) || Object.keys(c).length === 0) {
      throw new InputError('a rectification names the fields to set in changes', { parameter: 'changes' });
    }
    if (!Object.values(c).every((v) => v === null || typeof v === 'string' || typeof v === 'number')) {
      throw new InputError('changes must map fields to text, numbers or null', { parameter: 'changes' });
    }
    changes = c as CrmRecord;
  } else if (b.changes !== undefined) {
    throw new InputError('only a rectification takes changes', { parameter: 'changes' });
  }
  return {
    kind: b.kind as DsrKind,
    regime: regime as DsrRegime,
    ...(hasId ? { contact_id: b.contact_id as string } : { email: b.email as string }),
    ...(changes && { changes }),
  };
}

export function createDsrDesk(deps: DsrDeps): DsrDesk {
  const db = complianceDb(deps.db);
  const now = deps.now ?? (() => new Date());
  let key: Promise<Uint8Array> | undefined;
  const pseudonym = async (contactId: string) => {
    key ??= deps.secrets.putIfAbsent(pseudonymKeyName, randomBytes(32));
    return `subj_${createHmac('sha256', await key)
      .update(contactId)
      .digest('hex')
      .slice(0, 24)}`;
  };

  const load = async (id: string) => {
    if (!idPattern.test(id)) throw new ComplianceError('DSR_NOT_FOUND', 'no such data-subject request');
    const row = await db.selectFrom('compliance_dsr').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new ComplianceError('DSR_NOT_FOUND', 'no such data-subject request');
    return row;
  };

  const save = (row: ComplianceTables['compliance_dsr'], detail: Detail) =>
    db
      .updateTable('compliance_dsr')
      .set({
        state: row.state,
        closed_at: row.closed_at,
        contact_id: row.contact_id,
        detail: JSON.stringify(detail),
      })
      .where('id', '=', row.id)
      .execute();

  const record = (
    row: ComplianceTables['compliance_dsr'],
    action: string,
    reason: string,
    outcome: AuditEvent['outcome'] = 'allow',
    count?: number,
  ) =>
    deps.audit.append({
      timestamp: now().toISOString(),
      actor_id: row.requested_by,
      actor_role: 'admin',
      app_id: 'gatehouse',
      action,
      resource_type: 'dsr',
      resource_id: row.id,
      scope: 'admin',
      request_id: row.id,
      trace_id: '',
      outcome,
      reason: `${row.kind} (${row.regime}) of ${row.subject}: ${reason}`,
      ...(count === undefined ? {} : { record_count: count }),
    });

  const findContact = async (request: DsrRequest): Promise<string> => {
    if (request.contact_id !== undefined) {
      const found = await deps.crm.get('contact', request.contact_id, ['id'], []);
      if (found) return request.contact_id;
    } else if (request.email !== undefined) {
      const { records } = await deps.crm.query('contact', {
        fields: ['id'],
        where: [{ field: 'email', op: 'eq', value: request.email }],
        limit: 2,
      });
      if (records.length === 1) return String(records[0].id);
    }
    throw new ComplianceError(
      'DSR_SUBJECT_UNKNOWN',
      'the CRM holds no contact with that id or e-mail address',
    );
  };

  /** The subject's app store documents: deleted (erasure) or read (access). */
  const storeDocuments = (contactId: string) =>
    db
      .selectFrom('compliance_documents')
      .selectAll()
      .where('subject_ids', 'like', `%,${contactId},%`)
      .execute();

  /** The audit events whose resource is the subject, bodies not yet rewritten. */
  const eventsAbout = async (contactId: string) => {
    const found: Array<{ index: number; leaf_hash: string; event: AuditEvent }> = [];
    let cursor: string | undefined;
    do {
      const answer = await deps.audit.events({
        limit: auditPage,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const r of answer.records) {
        if (r.event.resource_type === 'contact' && r.event.resource_id === contactId) {
          found.push({ index: r.index, leaf_hash: r.leaf_hash, event: r.event });
        }
      }
      cursor = answer.next_cursor;
    } while (cursor !== undefined);
    return found;
  };

  const notify = async (row: ComplianceTables['compliance_dsr'], detail: Detail) => {
    let retried = 0;
    for (const hook of detail.webhooks) {
      if (hook.state !== 'pending') continue;
      retried += 1;
      hook.attempts += 1;
      const result = deps.config.webhookSecret
        ? await postDsrWebhook(
            hook.url,
            {
              dsr_id: row.id,
              kind: row.kind,
              regime: row.regime,
              contact_id: row.contact_id,
              due_at: row.due_at,
            },
            { secret: deps.config.webhookSecret, timeoutMs: deps.config.webhookTimeoutMs, now },
          )
        : {
            acknowledged: false,
            detail: 'no dsr.webhookSecret is configured, so no signed webhook can be sent',
          };
      hook.detail = result.detail;
      if (result.acknowledged) hook.state = 'acknowledged';
      await record(
        row,
        'compliance.dsr.webhook',
        `app ${hook.app_id} ${result.detail}`,
        result.acknowledged ? 'allow' : 'error',
      );
    }
    return retried;
  };

  /** Closes the request once nothing is pending: the closing event commits to the manifest. */
  const closeIfDone = async (row: ComplianceTables['compliance_dsr'], detail: Detail): Promise<boolean> => {
    if (detail.webhooks.some((h) => h.state !== 'acknowledged')) return false;
    const closedAt = now().toISOString();
    const manifest: DsrManifest = {
      dsr: row.id,
      kind: row.kind as DsrKind,
      regime: row.regime as DsrRegime,
      subject: row.subject,
      closed_at: closedAt,
      steps: detail.steps.map(({ step, state, count }) => ({
        step,
        state,
        ...(count === undefined ? {} : { count }),
      })),
      documents: detail.documents,
      events: detail.events,
      webhooks: detail.webhooks.map((h) => ({ app_id: h.app_id, state: h.state })),
    };
    const digest = manifestDigest(manifest);
    const closing = await record(row, 'compliance.dsr.close', `completed; manifest sha256:${digest}`);
    detail.manifest = manifest;
    detail.close_event_index = closing.index;
    row.state = 'completed';
    row.closed_at = closedAt;
    // An erasure forgets whom it was about; an access request keeps the id for its export.
    if (row.kind === 'deletion') row.contact_id = null;
    return true;
  };

  const step = (detail: Detail, name: string, detailText: string, count?: number) => {
    detail.steps.push({
      step: name,
      state: 'done',
      detail: detailText,
      at: now().toISOString(),
      ...(count === undefined ? {} : { count }),
    });
  };

  return {
    async create(request, by) {
      const contactId = await findContact(request);
      const created = now();
      const row: ComplianceTables['compliance_dsr'] = {
        id: `dsr_${randomUUID()}`,
        kind: request.kind,
        regime: request.regime,
        subject: await pseudonym(contactId),
        contact_id: contactId,
        state: 'in_progress',
        requested_by: by,
        created_at: created.toISOString(),
        due_at: new Date(created.getTime() + deps.config.dueDays[request.regime] * day).toISOString(),
        closed_at: null,
        detail: '{}',
      };
      const detail: Detail = {
        steps: [],
        webhooks: [],
        documents: [],
        events: [],
        ...(request.changes && { changes: request.changes }),
      };
      await record(row, 'compliance.dsr.create', `received; due ${row.due_at}`);
      await db
        .insertInto('compliance_dsr')
        .values({ ...row, detail: JSON.stringify(detail) })
        .execute();

      if (request.kind === 'deletion') {
        const deleted = await deps.crm.delete('contact', contactId, []);
        step(
          detail,
          'crm',
          deleted ? 'contact and its notes deleted through the connector' : 'contact already gone',
          deleted ? 1 : 0,
        );
        const docs = await storeDocuments(contactId);
        await db
          .deleteFrom('compliance_documents')
          .where('subject_ids', 'like', `%,${contactId},%`)
          .execute();
        detail.documents = docs.map((d) => ({
          hash: documentHash(d),
          classes: d.data_classes.split(',').filter(Boolean),
        }));
        step(detail, 'app_store', `${docs.length} documents deleted`, docs.length);
      } else if (request.kind === 'rectification') {
        const updated = await deps.crm.update('contact', contactId, detail.changes ?? {}, []);
        step(
          detail,
          'crm',
          `fields ${Object.keys(detail.changes ?? {})
            .sort()
            .join(',')} set through the connector`,
          updated ? 1 : 0,
        );
        step(detail, 'app_store', "documents are the apps' own: the webhook asks apps to rectify", 0);
      } else {
        const docs = await storeDocuments(contactId);
        step(detail, 'crm', 'contact and notes exported on request (GET /admin/v1/dsr/ID/export)', 1);
        step(detail, 'app_store', `${docs.length} documents included in the export`, docs.length);
      }
      await record(row, 'compliance.dsr.crm', detail.steps[0].detail, 'allow', detail.steps[0].count);
      await record(row, 'compliance.dsr.store', detail.steps[1].detail, 'allow', detail.steps[1].count);

      if (request.kind !== 'access') {
        const about = await eventsAbout(contactId);
        const rewritten = new Set(
          await rewriteEventBodies(
            deps.db,
            about.map((e): BodyRewrite => ({
              index: e.index,
              leafHash: e.leaf_hash,
              body: {
                event: { ...e.event, resource_id: row.subject },
                tombstone: { state: 'pseudonymised', run: row.id, at: now().toISOString() },
              },
            })),
          ),
        );
        detail.events = about
          .filter((e) => rewritten.has(e.index))
          .map(({ index, leaf_hash }) => ({ index, leaf_hash }));
        step(
          detail,
          'audit',
          `${detail.events.length} events about the subject pseudonymised (leaf hashes kept)`,
          detail.events.length,
        );
        await record(row, 'compliance.dsr.audit', detail.steps[2].detail, 'allow', detail.events.length);
      }

      detail.webhooks = (await deps.copyKeepers()).map((k) => ({
        app_id: k.appId,
        url: k.webhook,
        state: 'pending',
        attempts: 0,
        detail: 'not yet sent',
      }));
      await notify(row, detail);
      if (!(await closeIfDone(row, detail))) row.state = 'waiting';
      await save(row, detail);
      return toRecord(row, detail);
    },

    async get(id) {
      const row = await load(id);
      return toRecord(row, parseDetail(row.detail));
    },

    async list(q) {
      if (q.state !== undefined && !states.includes(q.state)) {
        throw new InputError(`state must be one of ${states.join(', ')}`, { parameter: 'state' });
      }
      const limit = q.limit ?? 50;
      let query = db
        .selectFrom('compliance_dsr')
        .selectAll()
        .orderBy('id')
        .limit(limit + 1);
      if (q.state !== undefined) query = query.where('state', '=', q.state);
      if (q.cursor !== undefined) {
        if (!idPattern.test(q.cursor))
          throw new InputError('cursor is not one this API returned', { parameter: 'cursor' });
        query = query.where('id', '>', q.cursor);
      }
      const rows = await query.execute();
      const records = rows.slice(0, limit).map((r) => toRecord(r, parseDetail(r.detail)));
      return rows.length > limit ? { records, next_cursor: records[records.length - 1].id } : { records };
    },

    async exportOf(id) {
      const row = await load(id);
      if (row.kind !== 'access' || row.contact_id === null) {
        throw new ComplianceError('DSR_NOT_FOUND', 'only an access request has an export');
      }
      const contactId = row.contact_id;
      const fields = deps.crm.describe('contact').fields.map((f) => f.name);
      const noteFields = deps.crm.describe('note').fields.map((f) => f.name);
      const contact = await deps.crm.get('contact', contactId, fields, []);
      const notes = await deps.crm.query('note', {
        fields: noteFields,
        where: [{ field: 'contact_id', op: 'eq', value: contactId }],
        limit: 500,
      });
      const docs = await storeDocuments(contactId);
      const events = await eventsAbout(contactId);
      await record(
        row,
        'compliance.dsr.export',
        `export produced: ${notes.records.length} notes, ${docs.length} documents, ${events.length} events`,
      );
      return {
        format: 'gatehouse-dsr-export',
        version: 1,
        dsr_id: row.id,
        generated_at: now().toISOString(),
        subject: row.subject,
        crm: { contact: contact ?? null, notes: notes.records },
        app_store: docs.map((d) => ({
          app_id: d.app_id,
          collection: d.collection,
          key: d.key,
          data_classes: d.data_classes.split(',').filter(Boolean),
          data: JSON.parse(d.data) as unknown,
          updated_at: d.updated_at,
        })),
        audit: events.map((e) => ({
          index: e.index,
          timestamp: e.event.timestamp,
          app_id: e.event.app_id,
          action: e.event.action,
          outcome: e.event.outcome,
        })),
      };
    },

    async closing(id) {
      const row = await load(id);
      const detail = parseDetail(row.detail);
      if (!detail.manifest || detail.close_event_index === undefined) {
        throw new ComplianceError(
          'DSR_NOT_FOUND',
          'the request is not closed yet, so it has no closing report',
        );
      }
      return { event_index: detail.close_event_index, manifest: detail.manifest };
    },

    async sweep() {
      const open = await db
        .selectFrom('compliance_dsr')
        .selectAll()
        .where('state', 'in', ['waiting', 'escalated'])
        .execute();
      let retried = 0;
      let escalated = 0;
      let closed = 0;
      const at = now().getTime();
      for (const row of open) {
        const detail = parseDetail(row.detail);
        retried += await notify(row, detail);
        const ackDue = Date.parse(row.created_at) + deps.config.acknowledgeDays * day;
        for (const hook of detail.webhooks) {
          if (hook.state === 'pending' && at >= ackDue) {
            hook.state = 'escalated';
            escalated += 1;
            await record(
              row,
              'compliance.dsr.escalate',
              `app ${hook.app_id} did not acknowledge within ${deps.config.acknowledgeDays} days`,
              'error',
            );
          }
        }
        if (await closeIfDone(row, detail)) closed += 1;
        else if (detail.webhooks.some((h) => h.state === 'escalated') || at >= Date.parse(row.due_at)) {
          if (row.state !== 'escalated') {
            row.state = 'escalated';
            await record(row, 'compliance.dsr.escalate', 'overdue: escalated to the platform team', 'error');
          }
        }
        await save(row, detail);
      }
      return { retried, escalated, closed };
    },
  };
}

function parseDetail(text: string): Detail {
  const value = JSON.parse(text) as Partial<Detail>;
  return { steps: [], webhooks: [], documents: [], events: [], ...value };
}

function toRecord(row: ComplianceTables['compliance_dsr'], detail: Detail): DsrRecord {
  return {
    id: row.id,
    kind: row.kind as DsrKind,
    regime: row.regime as DsrRegime,
    subject: row.subject,
    state: row.state as DsrState,
    requested_by: row.requested_by,
    created_at: row.created_at,
    due_at: row.due_at,
    closed_at: row.closed_at,
    steps: detail.steps,
    webhooks: detail.webhooks,
    ...(detail.close_event_index === undefined ? {} : { close_event_index: detail.close_event_index }),
  };
}
