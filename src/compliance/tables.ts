import type { Kysely } from 'kysely';
import type { Db } from '../store/index.js';

/** The compliance module's tables (migrations 017_compliance_app_store, 018_compliance_runs). */
export interface ComplianceTables {
  /** The governed app data store: one document per app, user, collection and key. */
  compliance_documents: {
    app_id: string;
    /** The user's id (the token's `sub`): documents are the user's, within the app. */
    user_id: string;
    collection: string;
    key: string;
    /** The document as JSON text. */
    data: string;
    bytes: number;
    /** Comma-separated data classes the document holds, as the app tagged them. */
    data_classes: string;
    /** Comma-framed subject (CRM contact) ids, `,c1,c2,`, so one LIKE finds a subject's documents. */
    subject_ids: string;
    created_at: string;
    updated_at: string;
    /** When its most restrictive class's retention runs out; null when no class has one. */
    expires_at: string | null;
  };
  /** One purge run: its manifest (what it deleted, by hash) and the index of its `purge` event. */
  compliance_purges: { id: string; at: string; manifest: string; event_index: number | null };
  /** Data-subject requests; `detail` is the JSON of the steps, webhooks and the closing report. */
  compliance_dsr: {
    id: string;
    kind: string;
    regime: string;
    /** The keyed pseudonym of the subject: what events and lists show. */
    subject: string;
    /** The CRM contact, until the request is closed (an erasure then forgets it). */
    contact_id: string | null;
    state: string;
    requested_by: string;
    created_at: string;
    due_at: string;
    closed_at: string | null;
    detail: string;
  };
}

export type ComplianceDb = Kysely<ComplianceTables>;

export function complianceDb(db: Db | ComplianceDb): ComplianceDb {
  return db as unknown as ComplianceDb;
}
