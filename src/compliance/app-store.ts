/**
 * The governed app data store: where a microapp keeps what it derives from CRM data, instead of its own
 * database. Documents belong to one app and one user (another app or user never sees them), carry the
 * data classes and subject ids they hold, expire with their classes' retention, and are bounded in size
 * and number. The HTTP routes (routes.ts) audit every access; this file is the storage and its rules.
 */
import type { AppStoreConfig, RetentionConfig } from '../config/index.js';
import { ComplianceError, InputError, NotFound } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { expiryOf } from './retention.js';
import { complianceDb, type ComplianceDb, type ComplianceTables } from './tables.js';

/** Whose documents: the app and the user a verified token names. */
export interface StoreOwner {
  readonly appId: string;
  readonly userId: string;
}

export interface StoredDocument {
  collection: string;
  key: string;
  data: unknown;
  data_classes: string[];
  subject_ids: string[];
  bytes: number;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
}

export type DocumentSummary = Omit<StoredDocument, 'data'>;

export interface PutDocument {
  data: unknown;
  data_classes: string[];
  subject_ids: string[];
}

export interface AppStore {
  get(owner: StoreOwner, collection: string, key: string): Promise<StoredDocument>;
  /** Answers the document's summary and whether it was created (rather than replaced). */
  put(
    owner: StoreOwner,
    collection: string,
    key: string,
    document: PutDocument,
  ): Promise<{ created: boolean; document: DocumentSummary }>;
  delete(owner: StoreOwner, collection: string, key: string): Promise<void>;
  list(
    owner: StoreOwner,
    collection: string,
    q: { cursor?: string; limit?: number },
  ): Promise<{ records: DocumentSummary[]; next_cursor?: string }>;
}

export const storeClasses = ['public', 'internal', 'pii', 'financial', 'health', 'secret'] as const;
const namePattern = /^[A-Za-z0-9._-]{1,128}$/;
const subjectPattern = /^[A-Za-z0-9_-]{1,64}$/;
const maxSubjects = 100;
const defaultPage = 50;
const maxPage = 500;

export function createAppStore(
  db: Db,
  config: { appStore: AppStoreConfig; retention: RetentionConfig },
  now: () => Date = () => new Date(),
): AppStore {
  const docs = complianceDb(db);
  return {
    async get(owner, collection, key) {
      checkName(collection, 'collection');
      checkName(key, 'key');
      const row = await own(docs, owner)
        .where('collection', '=', collection)
        .where('key', '=', key)
        .selectAll()
        .executeTakeFirst();
      // Another app's or user's document answers exactly as a missing one does.
      if (!row) throw new NotFound('no such document in this app store');
      return { ...summaryOf(row), data: JSON.parse(row.data) as unknown };
    },

    async put(owner, collection, key, document) {
      checkName(collection, 'collection');
      checkName(key, 'key');
      const text = JSON.stringify(document.data);
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > config.appStore.maxDocumentBytes) {
        throw new ComplianceError(
          'STORE_DOCUMENT_TOO_LARGE',
          `a document may hold at most ${config.appStore.maxDocumentBytes} bytes of JSON; this one has ${bytes}: store less, or split it`,
          { limit: config.appStore.maxDocumentBytes, bytes },
        );
      }
      const at = now();
      const stamp = at.toISOString();
      const expires = expiryOf(config.retention, document.data_classes, at) ?? null;
      const values = {
        data: text,
        bytes,
        data_classes: document.data_classes.join(','),
        subject_ids: framed(document.subject_ids),
        updated_at: stamp,
        expires_at: expires,
      };
      return docs.transaction().execute(async (trx) => {
        const existing = await own(trx, owner)
          .where('collection', '=', collection)
          .where('key', '=', key)
          .select('created_at')
          .executeTakeFirst();
        if (existing) {
          await trx
            .updateTable('compliance_documents')
            .set(values)
            .where('app_id', '=', owner.appId)
            .where('user_id', '=', owner.userId)
            .where('collection', '=', collection)
            .where('key', '=', key)
            .execute();
        } else {
          const { count } = await own(trx, owner)
            .select((eb) => eb.fn.countAll<number>().as('count'))
            .executeTakeFirstOrThrow();
          if (Number(count) >= config.appStore.maxDocumentsPerUser) {
            throw new ComplianceError(
              'STORE_LIMIT_REACHED',
              `a user may keep at most ${config.appStore.maxDocumentsPerUser} documents in one app's store; delete some first`,
              { limit: config.appStore.maxDocumentsPerUser },
            );
          }
          await trx
            .insertInto('compliance_documents')
            .values({
              app_id: owner.appId,
              user_id: owner.userId,
              collection,
              key,
              created_at: stamp,
              ...values,
            })
            .execute();
        }
        const created_at = existing?.created_at ?? stamp;
        return {
          created: !existing,
          document: {
            collection,
            key,
            data_classes: [...document.data_classes],
            subject_ids: [...document.subject_ids],
            bytes,
            created_at,
            updated_at: stamp,
            expires_at: expires,
          },
        };
      });
    },

    async delete(owner, collection, key) {
      checkName(collection, 'collection');
      checkName(key, 'key');
      const result = await docs
        .deleteFrom('compliance_documents')
        .where('app_id', '=', owner.appId)
        .where('user_id', '=', owner.userId)
        .where('collection', '=', collection)
        .where('key', '=', key)
        .executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw new NotFound('no such document in this app store');
    },

    async list(owner, collection, q) {
      checkName(collection, 'collection');
      const limit = q.limit ?? defaultPage;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxPage) {
        throw new InputError(`limit must be between 1 and ${maxPage}`, { parameter: 'limit' });
      }
      if (q.cursor !== undefined) checkName(q.cursor, 'cursor');
      let query = own(docs, owner).where('collection', '=', collection);
      if (q.cursor !== undefined) query = query.where('key', '>', q.cursor);
      const rows = await query
        .selectAll()
        .orderBy('key')
        .limit(limit + 1)
        .execute();
      const records = rows.slice(0, limit).map(summaryOf);
      return rows.length > limit ? { records, next_cursor: records[records.length - 1].key } : { records };
    },
  };
}

/** Validates a PUT body: `{ data, data_classes: [...], subject_ids?: [...] }`. Attacker-controlled. */
export function parsePutDocument(body: unknown): PutDocument {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InputError('send a JSON object { data, data_classes, subject_ids }');
  }
  const { data, data_classes: classes, subject_ids: subjects, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new InputError('unknown member(s) in the document', { members: unknown });
  if (data === undefined) throw new InputError('data is required (any JSON value)', { parameter: 'data' });
  if (
    !Array.isArray(classes) ||
    classes.length === 0 ||
    !classes.every((c) => (storeClasses as readonly unknown[]).includes(c))
  ) {
    throw new InputError(
      `data_classes must name the classes the document holds: ${storeClasses.join(', ')}`,
      {
        parameter: 'data_classes',
      },
    );
  }
  const subjectIds = subjects ?? [];
  if (
    !Array.isArray(subjectIds) ||
    subjectIds.length > maxSubjects ||
    !subjectIds.every((s) => typeof s === 'string' && subjectPattern.test(s))
  ) {
    throw new InputError(`subject_ids must be at most ${maxSubjects} CRM contact ids`, {
      parameter: 'subject_ids',
    });
  }
  return {
    data,
    data_classes: [...new Set(classes as string[])].sort(),
    subject_ids: [...new Set(subjectIds as string[])].sort(),
  };
}

export function checkName(value: string, what: string): void {
  if (!namePattern.test(value)) {
    throw new InputError(`${what} must be 1-128 letters, digits or . _ -`, { parameter: what });
  }
}

function own(db: ComplianceDb, owner: StoreOwner) {
  return db
    .selectFrom('compliance_documents')
    .where('app_id', '=', owner.appId)
    .where('user_id', '=', owner.userId);
}

function framed(ids: readonly string[]): string {
  return ids.length === 0 ? '' : `,${ids.join(',')},`;
}

function summaryOf(row: ComplianceTables['compliance_documents']): DocumentSummary {
  return {
    collection: row.collection,
    key: row.key,
    data_classes: row.data_classes.split(',').filter(Boolean),
    subject_ids: row.subject_ids.split(',').filter(Boolean),
    bytes: Number(row.bytes),
    created_at: row.created_at,
    updated_at: row.updated_at,
    expires_at: row.expires_at,
  };
}
