/** off_hours_bulk: records one user reads outside their working hours (their days, hours, time zone). */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
import {
  addToWindow,
  isRecordRead,
  mayFire,
  pruned,
  secondsOf,
  windowEvidence,
  windowTotal,
  type Window,
} from './window.js';
import { isWorkingTime, workingHoursOf } from '../hours.js';

type Options = DetectConfig['rules']['off_hours_bulk'];

export interface OffHoursState {
  readonly windows: Readonly<Record<string, Window>>;
  readonly fired: Readonly<Record<string, number>>;
  readonly prunedAt: number;
}

export function offHoursBulk(options: Options, hours: DetectConfig['workingHours']): Rule<OffHoursState> {
  const seconds = options.windowSeconds;
  return {
    id: 'off_hours_bulk',
    initial: () => ({ windows: {}, fired: {}, prunedAt: 0 }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (Number.isNaN(t) || !isRecordRead(event) || event.actor_id === 'anonymous') {
        return { state, detections: [] };
      }
      const own = workingHoursOf(hours, event.actor_id);
      if (isWorkingTime(own, t)) return { state, detections: [] };
      const key = event.actor_id;
      const window = addToWindow(state.windows[key] ?? [], t, event.record_count ?? 0, index, seconds);
      const total = windowTotal(window);
      let next: OffHoursState = { ...state, windows: { ...state.windows, [key]: window } };
      if (t - state.prunedAt > seconds) {
        next = {
          windows: pruned(next.windows, (w) => w.every((b) => b.t <= t - seconds)),
          fired: pruned(state.fired, (at) => t - at >= options.repeatSeconds),
          prunedAt: t,
        };
      }
      if (total < options.minRecords || !mayFire(next.fired, key, t, options.repeatSeconds)) {
        return { state: next, detections: [] };
      }
      return {
        state: { ...next, fired: { ...next.fired, [key]: t } },
        detections: [
          {
            rule: 'off_hours_bulk',
            severity: options.severity,
            actor: event.actor_id,
            app: event.app_id,
            summary:
              `${event.actor_id} read ${total} records outside working hours ` +
              `(${own.days.join(',')} ${own.start}-${own.end} ${own.timeZone}) within ${seconds}s, last through ${event.app_id}`,
            evidence: windowEvidence(window),
            at: event.timestamp,
          },
        ],
      };
    },
  };
}
