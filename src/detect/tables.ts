import type { Kysely } from 'kysely';
import type { Db } from '../store/index.js';

/** The detection tables (migration 008_detect). Times are ISO 8601 text. */
export interface DetectTables {
  detect_incidents: {
    /** `inc_` + time-ordered text: sorting by id is sorting by opening time. */
    id: string;
    rule: string;
    /** The user (or `network a.b.c.0/24` for an anonymous caller) the detections are about. */
    actor: string;
    app_id: string;
    /** The highest severity of its detections. */
    severity: string;
    /** open, acknowledged or closed. */
    state: string;
    /** The first detection's summary (names and counts, never record values). */
    summary: string;
    detections: number;
    /** JSON array of the containment actions taken and what became of them. */
    containment: string;
    /** The playbook version that chose the actions. */
    playbook_version: string;
    opened_at: string;
    updated_at: string;
    closed_at: string | null;
  };
  detect_timeline: {
    id: string;
    incident_id: string;
    at: string;
    /** detected, contained, containment_failed, alerted, alert_failed, acknowledged, annotated, closed, restored */
    kind: string;
    /** `detect` for what the system did, else the admin's email or `cli`. */
    by_actor: string;
    detail: string;
  };
  detect_evidence: {
    incident_id: string;
    /** Index of a matching event in the audit log. */
    audit_index: number;
  };
  /** Each rule's state (JSON), kept across restarts so baselines and learned sets survive them. */
  detect_state: {
    rule: string;
    state: string;
    /** The index of the last audit event the state includes (null: saved before 010_detect_cursor). */
    through: number | string | null;
    updated_at: string;
  };
}

export type DetectDb = Kysely<DetectTables>;

/** The same connection, typed for the detection tables. */
export function detectDb(db: Db | DetectDb): DetectDb {
  return db as unknown as DetectDb;
}
