/** What the detection rules see and say. */
import type { AuditEvent } from '../audit/index.js';
import type { Severity } from '../config/index.js';

export type { Severity };

export const ruleIds = [
  'mass_export',
  'off_hours_bulk',
  'rate_anomaly',
  'denial_burst',
  'refresh_token_reuse',
  'sensitive_first_access',
  'new_network',
  'credential_stuffing',
] as const;
export type RuleId = (typeof ruleIds)[number];

/** One appended audit event as a rule sees it: its index in the log and the event. */
export interface Observed {
  readonly index: number;
  readonly event: AuditEvent;
}

/** A rule's finding: who, which app, how bad, why (never record values), and the events that show it. */
export interface Detection {
  readonly rule: RuleId;
  readonly severity: Severity;
  /** The user (actor_id), or the client network for an anonymous caller. */
  readonly actor: string;
  readonly app: string;
  readonly summary: string;
  /** Audit indexes of the events that match, oldest first. */
  readonly evidence: readonly number[];
  /** The time of the event that completed the finding (the log's clock, not the rule's). */
  readonly at: string;
  /**
   * Whom containment should hit: the actor (the user in the app; the default), or the whole app for an
   * app-wide anomaly (many users, or the app's own volume far above its plan).
   */
  readonly scope?: DetectionScope;
}

export type DetectionScope = 'actor' | 'app';

/**
 * A streaming rule: a pure function over (state, event) → (state, detections). No I/O and no clock:
 * time is the event's timestamp, so a replay gives the same answers. States are plain JSON, kept across
 * restarts; `step` returns a new state and never changes the one it was given.
 */
export interface Rule<S> {
  readonly id: RuleId;
  initial(): S;
  step(state: S, observed: Observed): { state: S; detections: readonly Detection[] };
}

export const severityRank: Readonly<Record<Severity, number>> = { low: 0, medium: 1, high: 2, critical: 3 };
