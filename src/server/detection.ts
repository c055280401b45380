/**
 * Detection wired to the real levers: the limits' throttle, the broker's revocation, the catalog's
 * suspension. Kept beside the composition root so detect depends on none of them.
 */
import { Gauge, type Registry } from 'prom-client';
import type { AuditLog } from '../audit/index.js';
import { containmentLevers, type Lifecycle } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import type { Egress } from '../egress/index.js';
import {
  alertSinksFrom,
  createDetector,
  createIncidentDesk,
  loadPlaybook,
  systemClock,
  type AlertSink,
  type Clock,
  playbookFileFor,
  type Containment,
  type DetectLogger,
  type DetectorStats,
  type IncidentDesk,
  type Playbook,
} from '../detect/index.js';
import { tokenEndpointNetwork, type Limits } from '../limits/index.js';
import type { Db } from '../store/index.js';

export interface DetectionDeps {
  /** The playbook in force (the node's control snapshot); the configured file's when absent. */
  playbook?: Playbook;
  readonly config: Config;
  readonly db: Db;
  readonly audit: AuditLog;
  readonly limits: Pick<Limits, 'throttleApp' | 'unthrottleApp'>;
  revokeTokens(
    target: { appId?: string; userId?: string },
    how: { reason: string; actor: string; incident?: string },
  ): Promise<unknown>;
  readonly lifecycle: Lifecycle;
  /** Outbound calls to the alert webhook. */
  readonly egress: Egress;
  readonly logger: DetectLogger;
  /** Where the detector's counts are published (/metrics). */
  readonly registry?: Registry;
  /** The time of detection and of the throttles it sets (the limits read the same clock). */
  readonly clock?: Clock;
}

/** Containment through the server's own limits, broker and catalog. */
export function serverContainment(
  deps: Omit<DetectionDeps, 'config' | 'db' | 'audit' | 'logger'>,
): Containment {
  const clock = deps.clock ?? systemClock;
  return {
    // At scale these reject when Redis cannot confirm the change: the incident records it as failed.
    async throttleApp(appId, { ratePerSecond, forSeconds, userId, incident }) {
      await deps.limits.throttleApp(appId, {
        ratePerSecond,
        untilMs: clock.now() + forSeconds * 1000,
        incident,
        ...(userId !== undefined && { userId }),
      });
    },
    async unthrottleApp(appId, { userId }) {
      await deps.limits.unthrottleApp(appId, userId);
    },
    async throttleNetwork(network, { ratePerSecond, forSeconds, incident }) {
      const { appId, userId } = tokenEndpointNetwork(network);
      await deps.limits.throttleApp(appId, {
        ratePerSecond,
        untilMs: clock.now() + forSeconds * 1000,
        incident,
        userId,
      });
    },
    async unthrottleNetwork(network) {
      const { appId, userId } = tokenEndpointNetwork(network);
      await deps.limits.unthrottleApp(appId, userId);
    },
    async revokeTokens(target, { reason, incident }) {
      await deps.revokeTokens(target, { reason, incident, actor: 'detect' });
    },
    ...containmentLevers(deps.lifecycle),
  };
}

/**
 * How long a suspension takes to reach every reader of an app's status: the broker holds a client's
 * approval for half a second (src/broker/broker.ts), so an exchange just after may still succeed.
 */
const suspensionSettleMs = 600;

/**
 * Starts the detector (unless `detect.enabled` is false) and answers the incident desk, `idle` (every
 * event so far handled and its containment in force everywhere) and a closer.
 */
export async function startDetection(
  deps: DetectionDeps,
): Promise<{ desk: IncidentDesk; idle: () => Promise<void>; close: () => Promise<void> }> {
  const { config } = deps;
  const playbook = deps.playbook ?? loadPlaybook(playbookFileFor(config.dataDir, config.detect.playbook));
  const levers = serverContainment(deps);
  let suspensions = 0;
  let settledSuspensions = 0;
  const containment: Containment = {
    ...levers,
    async suspendApp(appId, options) {
      await levers.suspendApp(appId, options);
      suspensions += 1;
    },
  };
  const clock = deps.clock ?? systemClock;
  const now = () => new Date(clock.now());
  const desk = createIncidentDesk({
    db: deps.db,
    audit: deps.audit,
    containment,
    throttle: playbook.throttle,
    now,
  });
  if (!config.detect.enabled) return { desk, idle: async () => undefined, close: async () => undefined };
  const detector = createDetector({
    db: deps.db,
    audit: deps.audit,
    config: config.detect,
    playbook,
    containment,
    sinks: alertSinksFrom(config.detect, process.env.npm_package_version ?? '0.1.0', deps.egress).map(
      (sink) => forwardedUnderResidency(sink, config.compliance.residency, deps.audit, now),
    ),
    logger: deps.logger,
    now,
  });
  await detector.start();
  if (deps.registry) {
    const counts: Array<[string, string, (stats: DetectorStats) => number | undefined]> = [
      ['gatehouse_detect_events', 'Audit events the detection rules have seen', (s) => s.events],
      ['gatehouse_detect_detections', 'Detections the rules made', (s) => s.detections],
      ['gatehouse_detect_incidents_opened', 'Incidents opened', (s) => s.incidentsOpened],
      ['gatehouse_detect_rule_errors', 'Rule failures on an event (logged, skipped)', (s) => s.ruleErrors],
      ['gatehouse_detect_alerts_failed', 'Alerts not delivered after their retries', (s) => s.alertsFailed],
      ['gatehouse_detect_queued', 'Appended events waiting for the rules', (s) => s.queued],
      [
        'gatehouse_detect_watching',
        "1 on the node whose detector watches the log (the audit sequencer's), else 0",
        (s) => s.watching,
      ],
      [
        'gatehouse_detect_last_detection_ms',
        'Milliseconds from append to containment, latest incident',
        (s) => s.lastDetectionMs,
      ],
    ];
    for (const [name, help, read] of counts) {
      new Gauge({
        name,
        help,
        registers: [deps.registry],
        collect() {
          this.set(read(detector.stats()) ?? 0);
        },
      });
    }
  }
  deps.logger.info({ playbook: playbook.source, playbook_version: playbook.version }, 'detection started');
  const idle = async () => {
    await detector.idle();
    if (suspensions === settledSuspensions) return;
    settledSuspensions = suspensions;
    await new Promise((resolve) => setTimeout(resolve, suspensionSettleMs));
  };
  return { desk, idle, close: () => detector.close() };
}

/**
 * A sink outside Gatehouse's home region (the configuration admits one only when
 * `compliance.residency.forwardTo` names its region): every alert sent there is a transfer, recorded
 * in the audit trail before it leaves, with its mechanism; one that cannot be recorded is not sent.
 */
function forwardedUnderResidency(
  sink: AlertSink,
  residency: Config['compliance']['residency'],
  audit: AuditLog,
  now: () => Date,
): AlertSink {
  const region = sink.region;
  const allowed = residency.forwardTo.find((f) => f.region === region);
  if (region === undefined || region === residency.home || allowed === undefined) return sink;
  return {
    ...sink,
    async send(alert) {
      await audit.append({
        timestamp: now().toISOString(),
        actor_id: 'gatehouse',
        actor_role: 'system',
        app_id: alert.app_id,
        action: 'alert.forward',
        resource_type: 'incident',
        resource_id: alert.incident_id,
        scope: '',
        request_id: `${alert.incident_id}.forward`,
        trace_id: '',
        outcome: 'allow',
        reason: `alert sent to ${sink.name} in ${region} under ${allowed.mechanism}`,
        transfer: `${residency.home}>${region}`,
      });
      await sink.send(alert);
    },
  };
}
