/**
 * off_hours_bulk: records one user reads outside their working hours (their days, hours, time zone),
 * against their own off-hours baseline (records per off-hours hour they were active, ./baseline.ts):
 * someone who always catches up in the evening is judged by their evenings. Until the baseline has
 * `minSamples` hours (warm-up) the static `minRecords` applies; after, `factor` × baseline, never
 * below `minRecords` nor above `ceiling`.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
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
  /** Each user's off-hours volume; kept across restarts with the state. */
  readonly baselines?: Readonly<Record<string, VolumeBaseline>>;
}

export function offHoursLimits(options: Options): VolumeLimits {
  return {
    factor: options.factor,
    minSamples: options.minSamples,
    floor: options.minRecords,
    ceiling: options.ceiling,
    warmUp: 'floor',
  };
}

export function offHoursBulk(options: Options, hours: DetectConfig['workingHours']): Rule<OffHoursState> {
  const seconds = options.windowSeconds;
  const limits = offHoursLimits(options);
  return {
    id: 'off_hours_bulk',
    initial: () => ({ windows: {}, fired: {}, prunedAt: 0, baselines: {} }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (Number.isNaN(t) || !isRecordRead(event) || event.actor_id === 'anonymous') {
        return { state, detections: [] };
      }
      const own = workingHoursOf(hours, event.actor_id);
      if (isWorkingTime(own, t)) return { state, detections: [] };
      const key = event.actor_id;
      const count = event.record_count ?? 0;
      const window = addToWindow(state.windows[key] ?? [], t, count, index, seconds);
      const baseline = observeVolume(state.baselines?.[key], t, count, options.alpha);
      const total = windowTotal(window);
      const limit = volumeThreshold(limits, baseline);
      let next: OffHoursState = {
        ...state,
        windows: { ...state.windows, [key]: window },
        baselines: { ...state.baselines, [key]: baseline },
      };
      if (t - state.prunedAt > seconds) {
        next = {
          ...next,
          windows: pruned(next.windows, (w) => w.every((b) => b.t <= t - seconds)),
          fired: pruned(state.fired, (at) => t - at >= options.repeatSeconds),
          prunedAt: t,
        };
      }
      if (total < limit.threshold || !mayFire(next.fired, key, t, options.repeatSeconds)) {
        return { state: next, detections: [] };
      }
      return {
        state: {
          ...next,
          fired: { ...next.fired, [key]: t },
          baselines: { ...next.baselines, [key]: limit.learned ? firedThisHour(baseline) : baseline },
        },
        detections: [
          {
            rule: 'off_hours_bulk',
            severity: options.severity,
            actor: event.actor_id,
            app: event.app_id,
            summary:
              `${event.actor_id} read ${total} records outside working hours ` +
              `(${own.days.join(',')} ${own.start}-${own.end} ${own.timeZone}) within ${seconds}s ` +
              `(threshold ${limit.threshold}: ${limit.of}), last through ${event.app_id}`,
            evidence: windowEvidence(window),
            at: event.timestamp,
          },
        ],
      };
    },
  };
}
