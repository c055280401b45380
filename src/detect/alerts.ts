/**
 * Alerts: one JSON document per incident opened or escalated, sent to each sink whose minimum severity
 * it reaches. An alert names the rule, the actor, the app, counts and the actions taken; never record
 * contents, tokens or secrets (rule summaries hold names and counts only).
 */
import type { Severity } from './types.js';
import type { Incident } from './incidents.js';
import { severityRank } from './types.js';

export interface Alert {
  readonly type: 'gatehouse.incident';
  /** Why this alert: the incident was opened, or a detection raised its severity. */
  readonly reason: 'opened' | 'escalated';
  readonly incident_id: string;
  readonly rule: string;
  readonly severity: Severity;
  readonly state: string;
  readonly actor: string;
  readonly app_id: string;
  readonly summary: string;
  readonly detections: number;
  readonly evidence_count: number;
  /** Containment taken, e.g. `suspend_app app:call-notes applied`. */
  readonly containment: readonly string[];
  readonly opened_at: string;
  readonly sent_at: string;
}

export interface AlertSink {
  /** `webhook https://siem.example.com` or `syslog udp 10.0.0.5:514`: where, never a secret. */
  readonly name: string;
  readonly minSeverity: Severity;
  /** Where the sink is (residency), when its configuration says; else Gatehouse's home region. */
  readonly region?: string;
  /** Resolves when delivered; throws after its own retries when it cannot be. */
  send(alert: Alert): Promise<void>;
}

export function alertOf(
  incident: Incident,
  reason: Alert['reason'],
  evidenceCount: number,
  now: Date,
): Alert {
  return {
    type: 'gatehouse.incident',
    reason,
    incident_id: incident.id,
    rule: incident.rule,
    severity: incident.severity,
    state: incident.state,
    actor: incident.actor,
    app_id: incident.app_id,
    summary: incident.summary,
    detections: incident.detections,
    evidence_count: evidenceCount,
    containment: incident.containment.map((c) => `${c.action} ${c.target} ${c.status}`),
    opened_at: incident.opened_at,
    sent_at: now.toISOString(),
  };
}

/** The sinks an alert of this severity goes to. */
export function sinksFor(sinks: readonly AlertSink[], severity: Severity): AlertSink[] {
  return sinks.filter((sink) => severityRank[severity] >= severityRank[sink.minSeverity]);
}
