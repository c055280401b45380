/**
 * The retention purge: deletes app store documents past their retention and prunes audit event bodies
 * past their classes' retention (leaf hashes stay, so the log still verifies), then appends one `purge`
 * event naming the digest of its manifest: what was deleted, by hash, and the counts per class. The
 * manifest is kept beside it, so a purge report can prove each run offline (report.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  canonicalJson,
  prunedStub,
  rewriteEventBodies,
  type AuditEvent,
  type AuditLog,
  type BodyRewrite,
} from '../audit/index.js';
import type { RetentionConfig } from '../config/index.js';
import type { Db } from '../store/index.js';
import { eventClasses, retentionDaysOf } from './retention.js';
import { complianceDb } from './tables.js';

export interface PurgeManifest {
  run: string;
  at: string;
  /** Each deleted document: SHA-256 of its owner, place and content, and the classes it held. */
  documents: Array<{ hash: string; classes: string[] }>;
  /** Each pruned event body: its index and leaf hash (still in the tree), and its classes. */
  events: Array<{ index: number; leaf_hash: string; classes: string[] }>;
  /** Deleted documents and pruned events per data class (an item with two classes counts in both). */
  counts: Record<string, { documents: number; events: number }>;
  /** What was still past retention once the run finished: 0 and 0 when it did its job. */
  left: { documents: number; events: number };
}

export interface PurgeDeps {
  db: Db;
  audit: AuditLog;
  retention: Pick<RetentionConfig, 'days'>;
  /** The data class of a CRM field (classification), for the events that name fields. */
  fieldClasses: () => Promise<Readonly<Record<string, string>>>;
  now?: () => Date;
}

export interface PurgeRun {
  manifest: PurgeManifest;
  digest: string;
  eventIndex: number;
}

const day = 86_400_000;
const page = 1000;

export async function runPurge(deps: PurgeDeps): Promise<PurgeRun> {
  const now = (deps.now ?? (() => new Date()))();
  const at = now.toISOString();
  const run = `purge_${randomUUID()}`;
  // Recorded before anything is deleted: a run that dies before its `purge` event is named by
  // `audit verify` as a write without an outcome (src/audit/intents.ts).
  await deps.audit.append({
    ...purgeEvent({ run, at, documents: [], events: [], counts: {}, left: { documents: 0, events: 0 } }, ''),
    action: 'compliance.purge.intent',
    reason: 'purge starting',
    record_count: 0,
  });
  const documents = await deleteExpiredDocuments(deps.db, at);
  const classes = await deps.fieldClasses();
  const found = await eventsPastRetention(deps, now, (object, field) => classes[`${object}.${field}`]);
  const rewritten = new Set(
    await rewriteEventBodies(
      deps.db,
      found.map((f): BodyRewrite => ({
        index: f.index,
        leafHash: f.leaf_hash,
        body: { event: prunedStub(f.event), tombstone: { state: 'pruned', run, at } },
      })),
    ),
  );
  const events = found
    .filter((f) => rewritten.has(f.index))
    .map(({ index, leaf_hash, classes: c }) => ({ index, leaf_hash, classes: c }));
  const leftDocuments = await complianceDb(deps.db)
    .selectFrom('compliance_documents')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('expires_at', '<=', at)
    .executeTakeFirstOrThrow();
  const manifest: PurgeManifest = {
    run,
    at,
    documents,
    events,
    counts: countsOf(documents, events),
    left: { documents: Number(leftDocuments.count), events: found.length - events.length },
  };
  const digest = manifestDigest(manifest);
  const appended = await deps.audit.append(purgeEvent(manifest, digest));
  await complianceDb(deps.db)
    .insertInto('compliance_purges')
    .values({ id: run, at, manifest: canonicalJson(manifest), event_index: appended.index })
    .execute();
  return { manifest, digest, eventIndex: appended.index };
}

/** Hex SHA-256 of the manifest's RFC 8785 form: what the `purge` event commits to. */
export function manifestDigest(manifest: unknown): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

/** The digest a purge (or DSR) event's reason commits to, as `manifest sha256:<hex>`. */
export function committedDigest(reason: string): string | undefined {
  return /manifest sha256:([0-9a-f]{64})/.exec(reason)?.[1];
}

function purgeEvent(manifest: PurgeManifest, digest: string): AuditEvent {
  const perClass = Object.entries(manifest.counts)
    .map(([c, n]) => `${c} ${n.documents}/${n.events}`)
    .join(', ');
  return {
    timestamp: manifest.at,
    actor_id: 'system',
    actor_role: 'system',
    app_id: 'gatehouse',
    action: 'compliance.purge',
    resource_type: 'purge',
    resource_id: manifest.run,
    scope: '',
    request_id: manifest.run,
    trace_id: '',
    outcome: 'allow',
    reason:
      `deleted ${manifest.documents.length} documents, pruned ${manifest.events.length} event bodies` +
      `${perClass ? ` (documents/events by class: ${perClass})` : ''}; ` +
      `left past retention ${manifest.left.documents}/${manifest.left.events}; manifest sha256:${digest}`,
    record_count: manifest.documents.length + manifest.events.length,
  };
}

function countsOf(
  documents: PurgeManifest['documents'],
  events: PurgeManifest['events'],
): PurgeManifest['counts'] {
  const counts: PurgeManifest['counts'] = {};
  const add = (classes: readonly string[], what: 'documents' | 'events') => {
    for (const c of classes) (counts[c] ??= { documents: 0, events: 0 })[what] += 1;
  };
  for (const d of documents) add(d.classes, 'documents');
  for (const e of events) add(e.classes, 'events');
  return counts;
}

async function deleteExpiredDocuments(db: Db, at: string): Promise<PurgeManifest['documents']> {
  return complianceDb(db)
    .transaction()
    .execute(async (trx) => {
      const rows = await trx
        .selectFrom('compliance_documents')
        .selectAll()
        .where('expires_at', '<=', at)
        .execute();
      if (rows.length > 0) {
        await trx.deleteFrom('compliance_documents').where('expires_at', '<=', at).execute();
      }
      return rows.map((row) => ({
        hash: documentHash(row),
        classes: row.data_classes.split(',').filter(Boolean),
      }));
    });
}

/** SHA-256 over the document's owner, place and content: names it without revealing it. */
export function documentHash(row: {
  app_id: string;
  user_id: string;
  collection: string;
  key: string;
  data: string;
}): string {
  return createHash('sha256')
    .update([row.app_id, row.user_id, row.collection, row.key, row.data].join('\0'))
    .digest('hex');
}

interface Found {
  index: number;
  leaf_hash: string;
  event: AuditEvent;
  classes: string[];
}

async function eventsPastRetention(
  deps: PurgeDeps,
  now: Date,
  fieldClass: (object: string, field: string) => string | undefined,
): Promise<Found[]> {
  const found: Found[] = [];
  let cursor: string | undefined;
  do {
    const answer = await deps.audit.events({ limit: page, ...(cursor === undefined ? {} : { cursor }) });
    for (const record of answer.records) {
      const classes = eventClasses(record.event.fields, record.event.resource_type, fieldClass);
      const days = retentionDaysOf(deps.retention, classes);
      if (days === undefined) continue;
      if (Date.parse(record.event.timestamp) + days * day <= now.getTime()) {
        found.push({ index: record.index, leaf_hash: record.leaf_hash, event: record.event, classes });
      }
    }
    cursor = answer.next_cursor;
  } while (cursor !== undefined);
  return found;
}
