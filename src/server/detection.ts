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
  playbookFileFor,
  type Containment,
  type DetectLogger,
  type DetectorStats,
  type IncidentDesk,
} from '../detect/index.js';
import { tokenEndpointNetwork, type Limits } from '../limits/index.js';
import type { Db } from '../store/index.js';

export interface DetectionDeps {
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
}

/** Containment through the server's own limits, broker and catalog. */
export function serverContainment(
  deps: Omit<DetectionDeps, 'config' | 'db' | 'audit' | 'logger'>,
): Containment {
  return {
    // At scale these reject when Redis cannot confirm the change: the incident records it as failed.
    async throttleApp(appId, { ratePerSecond, forSeconds, userId, incident }) {
      await deps.limits.throttleApp(appId, {
        ratePerSecond,
        untilMs: Date.now() + forSeconds * 1000,
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
        untilMs: Date.now() + forSeconds * 1000,
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

/** Starts the detector (unless `detect.enabled` is false) and answers the incident desk and a closer. */
export async function startDetection(
  deps: DetectionDeps,
): Promise<{ desk: IncidentDesk; close: () => Promise<void> }> {
  const { config } = deps;
  const playbook = loadPlaybook(playbookFileFor(config.dataDir, config.detect.playbook));
  const containment = serverContainment(deps);
  const desk = createIncidentDesk({
    db: deps.db,
    audit: deps.audit,
    containment,
    throttle: playbook.throttle,
  });
  if (!config.detect.enabled) return { desk, close: async () => undefined };
  const detector = createDetector({
    db: deps.db,
    audit: deps.audit,
    config: config.detect,
    playbook,
    containment,
    sinks: alertSinksFrom(config.detect, process.env.npm_package_version ?? '0.1.0', deps.egress),
    logger: deps.logger,
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
  return { desk, close: () => detector.close() };
}
