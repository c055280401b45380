/**
 * mass_export: many records read by one user (through any apps) within a window; and every refusal of
 * the bulk-export guard (the gateway records it as its own `bulk_export` event). A refusal by a user's
 * budget, and one user's volume, is aimed at that user; a refusal by the app's budget (its plan) is
 * app-wide.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Detection, Rule } from '../types.js';
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
  readonly windows: Readonly<Record<string, Window>>;
  readonly fired: Readonly<Record<string, number>>;
  readonly prunedAt: number;
}

export function massExport(options: Options): Rule<MassExportState> {
  const seconds = options.windowSeconds;
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

      // One user's volume, whatever apps it goes through. An app's volume is judged against its plan
      // (the guard's app budget) and its own baseline (rate_anomaly), never a flat count: a busy app
      // with many users reads more than any flat threshold on an ordinary day.
      const count = event.record_count ?? 0;
      const key = `user|${event.actor_id}`;
      const windows = { ...state.windows };
      const fired = { ...state.fired };
      windows[key] = addToWindow(windows[key] ?? [], t, count, index, seconds);
      const total = windowTotal(windows[key]);
      const fires = total > options.maxRecords && mayFire(fired, key, t, options.repeatSeconds);
      if (fires) fired[key] = t;
      let next: MassExportState = { windows, fired, prunedAt: state.prunedAt };
      if (t - state.prunedAt > seconds) {
        next = {
          windows: pruned(windows, (w) => w.every((b) => b.t <= t - seconds)),
          fired: pruned(fired, (at) => t - at >= options.repeatSeconds),
          prunedAt: t,
        };
      }
      const detections = fires
        ? [
            detection(
              `user ${event.actor_id} read ${total} records in ${seconds}s (threshold ${options.maxRecords}); last through ${event.app_id}`,
              windowEvidence(windows[key]),
              'actor',
            ),
          ]
        : [];
      return { state: next, detections };
    },
  };
}
