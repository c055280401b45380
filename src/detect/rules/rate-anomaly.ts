/**
 * rate_anomaly: an app's requests in the current hour, or one user's in one app, far above its own
 * baseline, an EWMA of its past counts for the same hour of the week (until that has enough samples,
 * the same hour of a day of the same kind: weekday or weekend, in UTC). Until either has `minSamples`
 * (warm-up) only the fixed ceiling applies; after, the ceiling still caps the threshold.
 * A busy app has a high baseline, so its usual load is not an anomaly; hours without requests count
 * as zero, so a quiet night stays the baseline of nights. An app's anomaly is app-wide, a user's is
 * aimed at the user in the app.
 */
import type { DetectConfig } from '../../config/index.js';
import type { Rule } from '../types.js';
import { secondsOf } from './window.js';

type Options = DetectConfig['rules']['rate_anomaly'];

/** EWMA mean and number of samples, per slot (168 hours of the week; 24 weekday and 24 weekend hours). */
interface Baseline {
  readonly mean: readonly number[];
  readonly samples: readonly number[];
}

interface AppRate {
  /** Hours since the epoch of the hour being counted. */
  readonly hour: number;
  readonly count: number;
  readonly fired: boolean;
  /** The latest indexes of this hour's requests (evidence). */
  readonly recent: readonly number[];
  readonly week: Baseline;
  readonly day: Baseline;
}

export interface RateAnomalyState {
  /** By app id (app-wide), and by `user|<actor>|<app>` (one user in one app). */
  readonly apps: Readonly<Record<string, AppRate>>;
}

const recentKept = 20;
const hourOfWeek = (hour: number) => (hour + 96) % 168; // the epoch was a Thursday: slot 0 is Sunday 00:00 UTC
/** Hours 0-23 of weekdays, 24-47 of Saturdays and Sundays. */
const hourOfDayKind = (hour: number) => {
  const week = hourOfWeek(hour);
  return (week < 24 || week >= 144 ? 24 : 0) + (hour % 24);
};

function learn(baseline: Baseline, slot: number, count: number, alpha: number): Baseline {
  const mean = [...baseline.mean];
  const samples = [...baseline.samples];
  mean[slot] = samples[slot] === 0 ? count : alpha * count + (1 - alpha) * mean[slot];
  samples[slot] += 1;
  return { mean, samples };
}

const empty = (slots: number): Baseline => ({
  mean: new Array<number>(slots).fill(0),
  samples: new Array<number>(slots).fill(0),
});

/** Closes the counted hour and every empty hour up to `hour` (at most a week of them) into the baselines. */
function rollTo(app: AppRate, hour: number, alpha: number): AppRate {
  let { week, day } = app;
  const last = Math.min(hour, app.hour + 169);
  for (let h = app.hour; h < last; h++) {
    const count = h === app.hour ? app.count : 0;
    week = learn(week, hourOfWeek(h), count, alpha);
    day = learn(day, hourOfDayKind(h), count, alpha);
  }
  return { hour, count: 0, fired: false, recent: [], week, day };
}

/** The threshold of the current hour: the baseline's (if warmed up) capped by the ceiling. */
export function rateThreshold(
  options: Pick<Options, 'factor' | 'minRequests' | 'minSamples'>,
  app: AppRate,
  ceiling: number,
): { threshold: number; of: string; mean?: number } {
  const slotWeek = hourOfWeek(app.hour);
  const slotDay = hourOfDayKind(app.hour);
  const baseline =
    app.week.samples[slotWeek] >= options.minSamples
      ? { mean: app.week.mean[slotWeek], of: 'this hour of the week' }
      : app.day.samples[slotDay] >= options.minSamples
        ? {
            mean: app.day.mean[slotDay],
            of: app.hour % 24 === slotDay ? 'this hour of a weekday' : 'this hour of a weekend day',
          }
        : undefined;
  if (!baseline) return { threshold: ceiling, of: 'no baseline yet (warm-up): the fixed ceiling' };
  const threshold = Math.min(ceiling, Math.max(options.minRequests, options.factor * baseline.mean));
  return { threshold, of: baseline.of, mean: baseline.mean };
}

export function rateAnomaly(options: Options): Rule<RateAnomalyState> {
  /** Counts one request of `key`, rolling its hours; answers the new entry and whether it fires. */
  const count = (known: AppRate | undefined, hour: number, index: number, ceiling: number) => {
    let app: AppRate = known ?? {
      hour,
      count: 0,
      fired: false,
      recent: [],
      week: empty(168),
      day: empty(48),
    };
    // A late event (an earlier hour) is counted in the current one: hours only move forward.
    if (hour > app.hour) app = rollTo(app, hour, options.alpha);
    app = {
      ...app,
      count: app.count + 1,
      recent: app.recent.length < recentKept ? [...app.recent, index] : [...app.recent.slice(1), index],
    };
    const limit = rateThreshold(options, app, ceiling);
    const fires = !app.fired && app.count > limit.threshold;
    if (fires) app = { ...app, fired: true };
    return { app, fires, limit };
  };
  return {
    id: 'rate_anomaly',
    initial: () => ({ apps: {} }),
    step(state, { index, event }) {
      const t = secondsOf(event);
      if (
        Number.isNaN(t) ||
        !event.action.startsWith('crm.') ||
        // A write's intent and outcome are one request: count the outcome only.
        event.action.endsWith('.intent') ||
        !event.app_id ||
        event.app_id === 'unknown'
      ) {
        return { state, detections: [] };
      }
      const hour = Math.floor(t / 3600);
      const userKey = `user|${event.actor_id}|${event.app_id}`;
      const ofApp = count(state.apps[event.app_id], hour, index, options.ceiling);
      const ofUser =
        event.actor_id === 'anonymous'
          ? undefined
          : count(state.apps[userKey], hour, index, options.userCeiling);
      const next = {
        apps: { ...state.apps, [event.app_id]: ofApp.app, ...(ofUser && { [userKey]: ofUser.app }) },
      };
      const detections = [];
      const describe = (who: string, entry: typeof ofApp) =>
        `${who} made ${entry.app.count} requests this hour; ` +
        (entry.limit.mean === undefined
          ? `${entry.limit.of} is ${entry.limit.threshold}`
          : `its baseline for ${entry.limit.of} is ${entry.limit.mean.toFixed(1)} (threshold ${Math.round(entry.limit.threshold)})`);
      if (ofApp.fires) {
        detections.push({
          rule: 'rate_anomaly' as const,
          severity: options.severity,
          actor: event.actor_id,
          app: event.app_id,
          summary: describe(event.app_id, ofApp),
          evidence: ofApp.app.recent,
          at: event.timestamp,
          scope: 'app' as const,
        });
      }
      if (ofUser?.fires) {
        detections.push({
          rule: 'rate_anomaly' as const,
          severity: options.severity,
          actor: event.actor_id,
          app: event.app_id,
          summary: describe(`${event.actor_id} in ${event.app_id}`, ofUser),
          evidence: ofUser.app.recent,
          at: event.timestamp,
          scope: 'actor' as const,
        });
      }
      return { state: next, detections };
    },
  };
}
