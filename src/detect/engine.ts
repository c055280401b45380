/**
 * The detector: streams audit events as they are integrated (AuditLog.onAppended), runs every rule over
 * each one off the request path, and turns detections into incidents, containment and alerts.
 *
 * The listener only queues: rules run on a later turn of the event loop, so a request never waits for
 * detection and a rule can never fail one. A rule that throws is logged and counted and keeps its
 * previous state; the others go on.
 *
 * One detector watches the whole log: it runs only where the log is integrated (AuditLog.sequencing():
 * this process on SQLite, the sequencer node on PostgreSQL), so a cluster's events meet one set of rule
 * states. The rules see every event once, in index order: the detector remembers the last index they
 * saw, reads whatever the stream skipped from the store (appends by a CLI process, events integrated
 * before this node took the role over), and saves that index with the rule states, so the node that
 * takes over goes on from where the saved states stop.
 */
import type { AuditEventRecord, AuditLog } from '../audit/index.js';
import type { DetectConfig } from '../config/index.js';
import type { Db } from '../store/index.js';
import { alertOf, sinksFor, type AlertSink } from './alerts.js';
import { contain, type Containment, type ContainmentAction } from './containment.js';
import { addTimeline, incidentIds, recordDetection, saveContainment, type Incident } from './incidents.js';
import type { Playbook } from './playbook.js';
import { rulesFrom } from './rules/index.js';
import { detectDb } from './tables.js';
import { severityRank, type Detection, type Observed, type Rule } from './types.js';

export interface DetectLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface DetectorOptions {
  readonly db: Db;
  readonly audit: AuditLog;
  readonly config: DetectConfig;
  readonly playbook: Playbook;
  readonly containment: Containment;
  readonly sinks: readonly AlertSink[];
  readonly logger: DetectLogger;
  readonly now?: () => Date;
  /** How often changed rule states are saved; default 5000. */
  readonly saveIntervalMs?: number;
  /** How often the detector checks its role and reads what the stream skipped; default 500. */
  readonly followMs?: number;
  /** Detections of one rule, actor and app within this long share one incident write; default 1000. */
  readonly coalesceMs?: number;
  /** The rules to run; the configured ones when absent (tests give their own). */
  readonly rules?: ReadonlyArray<Rule<unknown>>;
}

export interface DetectorStats {
  readonly events: number;
  readonly detections: number;
  readonly incidentsOpened: number;
  readonly ruleErrors: number;
  readonly alertsFailed: number;
  readonly queued: number;
  /** Milliseconds from an event's append to its incident's containment, the latest and the largest. */
  readonly lastDetectionMs: number | undefined;
  readonly maxDetectionMs: number | undefined;
  /** 1 while this detector watches the log (where it is integrated), else 0. */
  readonly watching: 0 | 1;
}

export interface Detector {
  /** Subscribes to the audit log; where the log is integrated, loads the saved rule states and watches. */
  start(): Promise<void>;
  /** Resolves once every event appended so far is processed and its incidents are written. */
  idle(): Promise<void>;
  stats(): DetectorStats;
  /** Unsubscribes, finishes what is queued, saves the rule states. */
  close(): Promise<void>;
}

/** Events detection itself causes (containment, incident changes) are not fed back into the rules. */
function isOwnEvent(record: AuditEventRecord): boolean {
  const { action, actor_id } = record.event;
  return actor_id === 'detect' || action.startsWith('detect.') || action.startsWith('incident.');
}

const maxPerTurn = 500;
/** Events read from the store at a time when catching up. */
const catchUpPage = 1000;
const maxMergedEvidence = 200;
const alertGraceMs = 2000;

export function createDetector(options: DetectorOptions): Detector {
  const now = options.now ?? (() => new Date());
  const ids = incidentIds();
  const rules = options.rules ?? rulesFrom(options.config);
  const states = new Map<string, unknown>(rules.map((rule) => [rule.id, rule.initial()]));
  let changed = false;
  /** The index of the last event the rules saw; unknown until the first one (or a saved one). */
  let through: number | undefined;
  /** True while this instance integrates the log and so watches it. */
  let active = false;
  let loaded = false;
  /** A role change or a read from the store, one at a time. */
  let following: Promise<void> | undefined;
  let followFailed = false;
  const queue: Array<{ record: AuditEventRecord; appendedAt: number }> = [];
  const alerting = new Set<Promise<void>>();
  const recent = new Map<
    string,
    {
      at: number;
      merged: { detection: Detection; count: number; appendedAt: number } | undefined;
      timer?: NodeJS.Timeout;
    }
  >();
  const coalesceMs = options.coalesceMs ?? 1000;
  let scheduled = false;
  let handling: Promise<void> = Promise.resolve();
  let unsubscribe: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let followTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const counts = { events: 0, detections: 0, incidentsOpened: 0, ruleErrors: 0, alertsFailed: 0 };
  let lastDetectionMs: number | undefined;
  let maxDetectionMs: number | undefined;

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(runQueued);
  }

  function runQueued(): void {
    scheduled = false;
    if (following) return; // it hands back to the queue when done
    let taken = 0;
    for (; taken < queue.length && taken < maxPerTurn; taken++) {
      const { record, appendedAt } = queue[taken];
      if (through !== undefined && record.index > through + 1) break;
      observe(record, appendedAt);
    }
    const gap = taken < queue.length && taken < maxPerTurn;
    queue.splice(0, taken);
    // Events are missing before the next one: read them from the store, then go on with the queue.
    if (gap) void follow();
    else if (queue.length > 0) schedule();
  }

  /** Runs the rules over one event, unless they have seen it. */
  function observe(record: AuditEventRecord, appendedAt: number): void {
    if (through !== undefined && record.index <= through) return;
    through = record.index;
    changed = true;
    if (isOwnEvent(record)) return;
    counts.events += 1;
    const observed: Observed = { index: record.index, event: record.event };
    for (const rule of rules) {
      for (const detection of step(rule, observed)) {
        counts.detections += 1;
        coalesce(detection, appendedAt);
      }
    }
  }

  /** Takes up or gives up watching as the role moves, and reads from the store what the stream skipped. */
  function follow(): Promise<void> {
    following ??= (async () => {
      try {
        const leading = options.audit.sequencing() && !closed;
        if (leading && !active) await activate();
        else if (!leading && active) await deactivate();
        if (active) await readMissed();
        followFailed = false;
      } catch (err) {
        // Once per outage: the timer retries every followMs.
        if (!followFailed) {
          options.logger.error({ err, through }, 'detection could not read the audit log; it retries');
        }
        followFailed = true;
      }
    })().finally(() => {
      following = undefined;
      if (!followFailed && queue.length > 0) schedule();
    });
    return following;
  }

  async function activate(): Promise<void> {
    const saved = await detectDb(options.db)
      .selectFrom('detect_state')
      .select(['rule', 'state', 'through'])
      .execute();
    // Saved together, so one index; states saved before there was one (null) say nothing of where.
    const savedThrough =
      saved.length > 0 && saved.every((row) => row.through !== null)
        ? Math.min(...saved.map((row) => Number(row.through)))
        : undefined;
    // Another node may have watched the log since this one last did: its saved states are newer.
    const newer = savedThrough !== undefined && (through === undefined || savedThrough > through);
    if (!loaded || newer) {
      for (const row of saved) {
        if (!states.has(row.rule)) continue;
        try {
          states.set(row.rule, JSON.parse(row.state));
        } catch {
          options.logger.warn(
            { rule: row.rule },
            'saved detection state is unreadable; the rule starts afresh',
          );
        }
      }
      if (saved.length > 0) through = savedThrough;
    }
    loaded = true;
    active = true;
    options.logger.info({ through }, 'detection watches the audit log');
  }

  async function deactivate(): Promise<void> {
    active = false;
    queue.length = 0;
    options.logger.info({ through }, 'detection stops: this node no longer integrates the audit log');
    await saveStates();
  }

  /** Reads the events after `through` from the store (none before the first event seen: there is no start). */
  async function readMissed(): Promise<void> {
    while (through !== undefined && active) {
      const page = await options.audit.events({ cursor: String(through), limit: catchUpPage });
      for (const record of page.records) observe(record, Date.parse(record.event.timestamp));
      if (!page.next_cursor) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  function step(rule: Rule<unknown>, observed: Observed): readonly Detection[] {
    try {
      const { state, detections } = rule.step(states.get(rule.id), observed);
      states.set(rule.id, state);
      return detections;
    } catch (err) {
      counts.ruleErrors += 1;
      options.logger.error(
        { err, rule: rule.id, index: observed.index },
        'detection rule failed on an event; skipped',
      );
      return [];
    }
  }

  /**
   * One incident write per rule, actor and app per `coalesceMs`: detections arriving meanwhile (an attack
   * above threshold fires on every event) are merged into the next write, evidence and count included.
   * A closed incident therefore gets a successor within `coalesceMs` of the next detection.
   */
  function coalesce(detection: Detection, appendedAt: number): void {
    const key = `${detection.rule}\u0000${detection.actor}\u0000${detection.app}`;
    const entry = recent.get(key);
    if (!entry || Date.now() - entry.at >= coalesceMs) {
      recent.set(key, { at: Date.now(), merged: undefined });
      enqueue(detection, 1, appendedAt);
      return;
    }
    const merged = entry.merged;
    entry.merged = merged
      ? {
          detection: {
            ...detection,
            severity:
              severityRank[detection.severity] > severityRank[merged.detection.severity]
                ? detection.severity
                : merged.detection.severity,
            evidence: [...new Set([...merged.detection.evidence, ...detection.evidence])].slice(
              -maxMergedEvidence,
            ),
          },
          count: merged.count + 1,
          appendedAt: merged.appendedAt,
        }
      : { detection, count: 1, appendedAt };
    if (!entry.timer) {
      entry.timer = setTimeout(() => flush(key), Math.max(0, entry.at + coalesceMs - Date.now()));
      entry.timer.unref();
    }
  }

  function flush(key: string): void {
    const entry = recent.get(key);
    if (!entry) return;
    entry.timer = undefined;
    if (!entry.merged) return;
    const { detection, count, appendedAt } = entry.merged;
    entry.merged = undefined;
    entry.at = Date.now();
    enqueue(detection, count, appendedAt);
  }

  function enqueue(detection: Detection, count: number, appendedAt: number): void {
    handling = handling
      .then(() => handle(detection, count, appendedAt))
      .catch((err: unknown) =>
        options.logger.error({ err, rule: detection.rule }, 'detection could not be recorded'),
      );
  }

  async function handle(detection: Detection, count: number, appendedAt: number): Promise<void> {
    const { incident, opened, escalated } = await recordDetection(options.db, detection, {
      now: now(),
      ids,
      playbookVersion: options.playbook.version,
      msSinceAppend: Date.now() - appendedAt,
      count,
    });
    if (!opened && !escalated) return;
    if (opened) counts.incidentsOpened += 1;
    const actions = options.playbook.actionsFor(detection.rule, incident.severity, detection.scope);
    const containmentActions = actions.filter((a): a is ContainmentAction => a !== 'alert');
    let current: Incident = incident;
    if (containmentActions.length > 0) {
      const records = await contain(incident, containmentActions, {
        containment: options.containment,
        audit: options.audit,
        throttle: options.playbook.throttle,
        now,
      });
      current = { ...incident, containment: [...incident.containment, ...records] };
      await saveContainment(options.db, incident.id, current.containment, now());
      for (const record of records) {
        await addTimeline(options.db, incident.id, {
          kind: record.status === 'applied' ? 'contained' : 'containment_failed',
          by: 'detect',
          detail: record.detail,
          now: now(),
          ids,
        });
      }
    }
    const elapsed = Date.now() - appendedAt;
    lastDetectionMs = elapsed;
    maxDetectionMs = Math.max(maxDetectionMs ?? 0, elapsed);
    options.logger.warn(
      {
        incident: incident.id,
        rule: incident.rule,
        severity: incident.severity,
        app: incident.app_id,
        actor: incident.actor,
        actions,
        ms_since_append: elapsed,
      },
      opened ? 'incident opened' : 'incident escalated',
    );
    if (actions.includes('alert'))
      sendAlerts(current, opened ? 'opened' : 'escalated', detection.evidence.length);
  }

  function sendAlerts(incident: Incident, reason: 'opened' | 'escalated', evidence: number): void {
    for (const sink of sinksFor(options.sinks, incident.severity)) {
      const delivery = sink
        .send(alertOf(incident, reason, evidence, now()))
        .then(
          () =>
            addTimeline(options.db, incident.id, {
              kind: 'alerted',
              by: 'detect',
              detail: sink.name,
              now: now(),
              ids,
            }),
          async (err: unknown) => {
            counts.alertsFailed += 1;
            options.logger.error(
              { err, incident: incident.id, sink: sink.name },
              'alert could not be delivered',
            );
            await addTimeline(options.db, incident.id, {
              kind: 'alert_failed',
              by: 'detect',
              detail: `${sink.name}: ${(err as Error).message}`,
              now: now(),
              ids,
            });
          },
        )
        .catch((err: unknown) =>
          options.logger.error({ err, incident: incident.id }, 'alert outcome not recorded'),
        )
        .finally(() => alerting.delete(delivery));
      alerting.add(delivery);
    }
  }

  /**
   * Saves every rule's state with the index it stops at, in one transaction. A save never replaces
   * states that go further (a node that lost the role saving after the one that took it over).
   */
  async function saveStates(): Promise<void> {
    if (!changed || through === undefined) return;
    changed = false;
    const at = now().toISOString();
    const mark = through;
    const rows = rules.map((rule) => ({
      rule: rule.id,
      state: JSON.stringify(states.get(rule.id)),
      through: mark,
      updated_at: at,
    }));
    try {
      await detectDb(options.db)
        .transaction()
        .execute(async (trx) => {
          for (const row of rows) {
            await trx
              .insertInto('detect_state')
              .values(row)
              .onConflict((oc) =>
                oc
                  .column('rule')
                  .doUpdateSet({ state: row.state, through: mark, updated_at: at })
                  .where((eb) =>
                    eb.or([eb('detect_state.through', 'is', null), eb('detect_state.through', '<=', mark)]),
                  ),
              )
              .execute();
          }
        });
    } catch (err) {
      changed = true;
      throw err;
    }
  }

  async function drained(): Promise<void> {
    while ((queue.length > 0 || scheduled || following) && !followFailed) {
      await (following ?? new Promise((resolve) => setImmediate(resolve)));
    }
    for (const [key, entry] of recent) {
      if (entry.merged) {
        clearTimeout(entry.timer);
        flush(key);
      }
    }
    let settled: Promise<void>;
    do {
      settled = handling;
      await settled;
    } while (settled !== handling);
  }

  return {
    async start() {
      if (unsubscribe || closed) return;
      unsubscribe = options.audit.onAppended((record) => {
        if (!active) return;
        queue.push({ record, appendedAt: Date.now() });
        schedule();
      });
      await follow();
      if (followFailed) throw new Error('detection cannot read its saved state or the audit log');
      followTimer = setInterval(() => void follow(), options.followMs ?? 500);
      followTimer.unref();
      timer = setInterval(() => {
        if (!active) return;
        saveStates().catch((err: unknown) =>
          options.logger.error({ err }, 'detection state could not be saved'),
        );
      }, options.saveIntervalMs ?? 5000);
      timer.unref();
    },
    idle: drained,
    stats: () => ({
      ...counts,
      queued: queue.length,
      lastDetectionMs,
      maxDetectionMs,
      watching: active ? 1 : 0,
    }),
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe?.();
      if (timer) clearInterval(timer);
      if (followTimer) clearInterval(followTimer);
      await drained();
      await Promise.race([
        Promise.allSettled([...alerting]),
        new Promise((resolve) => setTimeout(resolve, alertGraceMs).unref()),
      ]);
      if (active) await saveStates();
    },
  };
}
