/**
 * The detect module: streaming rules over the audit trail, incidents, containment through injected
 * levers, alerts, and playbooks as code (DESIGN.md "detect"; issue 8).
 */
import type { DetectConfig } from '../config/index.js';
import type { Egress } from '../egress/index.js';
import type { AlertSink } from './alerts.js';
import { syslogSink } from './syslog.js';
import { webhookSink } from './webhook.js';

export type { Detection, Observed, Rule, RuleId, Severity } from './types.js';
export { ruleIds, severityRank } from './types.js';
export { rulesFrom } from './rules/index.js';
export {
  createDetector,
  type Detector,
  type DetectorOptions,
  type DetectorStats,
  type DetectLogger,
} from './engine.js';
export { createIncidentDesk, type IncidentDesk, type IncidentDeskOptions } from './desk.js';
export {
  findIncident,
  incidentStates,
  listIncidents,
  type Incident,
  type IncidentDetail,
  type IncidentQuery,
  type IncidentState,
  type TimelineEntry,
} from './incidents.js';
export {
  actionNames,
  type ActionName,
  type Containment,
  type ContainmentRecord,
  type ThrottleSettings,
} from './containment.js';
export {
  loadPlaybook,
  parsePlaybook,
  playbookFileFor,
  defaultPlaybookFile,
  type Playbook,
} from './playbook.js';
export { alertOf, type Alert, type AlertSink } from './alerts.js';
export { webhookSignature, signatureHeader, timestampHeader, deliveryHeader } from '../catalog/index.js';
export { cefOf, syslogMessage } from './syslog.js';
export { isWorkingTime, workingHoursOf, describeLocalTime, type WorkingHours } from './hours.js';
export { simulatedClock, systemClock, type Clock, type SimulatedClock } from './clock.js';
export * from './simulator/index.js';

/** The alert sinks the configuration names; a webhook is called through the guarded `egress`. */
export function alertSinksFrom(config: DetectConfig, version: string, egress: Egress): AlertSink[] {
  const sinks: AlertSink[] = [];
  const { webhook, syslog } = config.alerts;
  if (webhook) sinks.push({ ...webhookSink(webhook, egress), region: webhook.region });
  if (syslog) sinks.push({ ...syslogSink(syslog, version), region: syslog.region });
  return sinks;
}
