/**
 * mass_export: many records read by one user (through any apps), or through one app, within a window,
 * far above their own baseline (records per active hour, ./baseline.ts); and every refusal of the
 * bulk-export guard (the gateway records it as its own `bulk_export` event). A user in warm-up is held
 * to the static `maxRecords`, an app in warm-up only to its ceiling (an app's volume is judged by its
 * plan, the guard, until it has a history). A refusal by a user's budget, and one user's volume, is
 * aimed at that user; a refusal by the app's budget (its plan), and the app's volume, is app-wide.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Detection, Rule } from '../types.js';
import {
  firedThisHour,
  observeVolume,
  volumeThreshold,
  type VolumeBaseline,
  type VolumeLimits,
} from './baseline.js';
import {
  addToWindow,
  isRecordRead,
  mayFire,
  pruned,
  reasonFields,
  secondsOf,
  windowEvidence,
  windowTotal,
  type Window,
} from './window.js';

type Options = DetectConfig['rules']['mass_export'];

export interface MassExportState {
  /** By `user|<actor>` and `app|<app>`. */
  readonly windows: Readonly<Record<string, Window>>;
  readonly fired: Readonly<Record<string, number>>;
  readonly prunedAt: number;
  /** Learned volume per `user|<actor>` and `app|<app>`; kept across restarts with the state. */
  readonly baselines?: Readonly<Record<string, VolumeBaseline>>;
}

/** The limits of a user's and of an app's volume. */
export function massExportLimits(options: Options): { user: VolumeLimits; app: VolumeLimits } {
  const shared = { factor: options.factor, minSamples: options.minSamples };
  return {
    user: { ...shared, floor: options.maxRecords, ceiling: options.ceiling, warmUp: 'floor' },
    app: { ...shared, floor: options.appMinRecords, ceiling: options.appCeiling, warmUp: 'ceiling' },
  };
}

export function massExport(options: Options): Rule<MassExportState> {
  const seconds = options.windowSeconds;
  const limits = massExportLimits(options);
  return {
    id: 'mass_export',
    initial: () => ({ windows: {}, fired: {}, prunedAt: 0 }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (Number.isNaN(t)) return { state, detections: [] };
      const detection = (summary: string, evidence: number[], scope: 'actor' | 'app'): Detection => ({
        rule: 'mass_export',
        severity: options.severity,
        actor: event.actor_id,
        app: event.app_id,
        summary,
        evidence,
        at: event.timestamp,
        scope,
      });

      if (event.action === 'bulk_export') {
        const key = `guard|${event.app_id}|${event.actor_id}`;
        if (!options.bulkExportGuard || !mayFire(state.fired, key, t, options.repeatSeconds)) {
          return { state, detections: [] };
        }
        const f = reasonFields(event.reason);
        const appWide = f.budget === 'app';
        const summary =
          `the bulk-export guard refused ${event.app_id} (user ${event.actor_id}) reading ${f.object ?? 'records'} ` +
          `by the ${appWide ? "app's plan" : "user's"} budget: ` +
          `${f.attempted ?? '?'} distinct records in ${f.window_seconds ?? '?'}s against a threshold of ${f.threshold ?? '?'}` +
          (f.table_size ? ` of ${f.table_size}` : '');
        const recent = windowEvidence(state.windows[`user|${event.actor_id}`] ?? []);
        return {
          state: { ...state, fired: { ...state.fired, [key]: t } },
          detections: [detection(summary, [...recent, index], appWide ? 'app' : 'actor')],
        };
      }
      if (!isRecordRead(event)) return { state, detections: [] };

      // One user's volume, whatever apps it goes through, and one app's, each against its own
      // baseline: a heavy reader whose heavy days are usual is not an anomaly; a jump from it is.
      const count = event.record_count ?? 0;
      const windows = { ...state.windows };
      const fired = { ...state.fired };
      const baselines = { ...state.baselines };
      const detections: Detection[] = [];
      const measures = [
        { key: `user|${event.actor_id}`, who: `user ${event.actor_id}`, scope: 'actor' as const },
        { key: `app|${event.app_id}`, who: `app ${event.app_id}`, scope: 'app' as const },
      ];
      for (const { key, who, scope } of measures) {
        windows[key] = addToWindow(windows[key] ?? [], t, count, index, seconds);
        baselines[key] = observeVolume(baselines[key], t, count, options.alpha);
        const total = windowTotal(windows[key]);
        const limit = volumeThreshold(limits[scope === 'actor' ? 'user' : 'app'], baselines[key]);
        if (total <= limit.threshold || !mayFire(fired, key, t, options.repeatSeconds)) continue;
        fired[key] = t;
        if (limit.learned) baselines[key] = firedThisHour(baselines[key]);
        detections.push(
          detection(
            `${who} read ${total} records in ${seconds}s (threshold ${limit.threshold}: ${limit.of}); ` +
              (scope === 'actor' ? `last through ${event.app_id}` : `last for ${event.actor_id}`),
            windowEvidence(windows[key]),
            scope,
          ),
        );
      }
      let next: MassExportState = { windows, fired, prunedAt: state.prunedAt, baselines };
      if (t - state.prunedAt > seconds) {
        next = {
          windows: pruned(windows, (w) => w.every((b) => b.t <= t - seconds)),
          fired: pruned(fired, (at) => t - at >= options.repeatSeconds),
          prunedAt: t,
          baselines,
        };
      }
      return { state: next, detections };
    },
  };
}
