/**
 * A volume baseline: an EWMA of the records someone reads in an hour they are active, learned as
 * each hour closes. Idle hours teach nothing (a rep who exports on Mondays is judged by Mondays, not
 * averaged down by nights), and an hour in which the learned baseline fired is not learned, so an
 * attack does not raise the bar for the next one. Until `minSamples` hours are learned (warm-up) the
 * threshold is the warm-up one, and every active hour is learned (a heavy reader held to the floor
 * meanwhile still gets a baseline); after, `factor` × baseline, never below the floor nor above the
 * ceiling.
 */
export interface VolumeBaseline {
  /** Hours since the epoch of the hour being counted. */
  readonly hour: number;
  readonly count: number;
  /** Whether the rule fired in this hour (it is then not learned). */
  readonly fired: boolean;
  readonly mean: number;
  /** Active hours learned. */
  readonly samples: number;
}

export interface VolumeLimits {
  readonly factor: number;
  readonly minSamples: number;
  /** The threshold never goes below this once learned. */
  readonly floor: number;
  /** Nor above this, learned or not. */
  readonly ceiling: number;
  /** During warm-up: a conservative static threshold (the floor), or only the ceiling (observe). */
  readonly warmUp: 'floor' | 'ceiling';
}

export const freshBaseline = (hour: number): VolumeBaseline => ({
  hour,
  count: 0,
  fired: false,
  mean: 0,
  samples: 0,
});

/** Adds `n` records read at `seconds`, closing (and learning) the previous hour when a new one starts. */
export function observeVolume(
  baseline: VolumeBaseline | undefined,
  seconds: number,
  n: number,
  alpha: number,
): VolumeBaseline {
  const hour = Math.floor(seconds / 3600);
  const current = baseline ?? freshBaseline(hour);
  // A late event (an earlier hour) is counted in the current one: hours only move forward.
  if (hour <= current.hour) return { ...current, count: current.count + n };
  const learns = current.count > 0 && !current.fired;
  const mean = !learns
    ? current.mean
    : current.samples === 0
      ? current.count
      : alpha * current.count + (1 - alpha) * current.mean;
  return { hour, count: n, fired: false, mean, samples: current.samples + (learns ? 1 : 0) };
}

/** The threshold the baseline sets now, and in words where it comes from (no record values). */
export function volumeThreshold(
  limits: VolumeLimits,
  baseline: VolumeBaseline | undefined,
): { threshold: number; of: string; learned: boolean } {
  if (!baseline || baseline.samples < limits.minSamples) {
    const warm = `warm-up (${baseline?.samples ?? 0}/${limits.minSamples} active hours learned)`;
    return limits.warmUp === 'floor'
      ? { threshold: Math.min(limits.floor, limits.ceiling), of: `${warm}: the static floor`, learned: false }
      : { threshold: limits.ceiling, of: `${warm}: only the ceiling`, learned: false };
  }
  const threshold = Math.min(limits.ceiling, Math.max(limits.floor, limits.factor * baseline.mean));
  return {
    threshold: Math.round(threshold),
    of: `${limits.factor} × a baseline of ${Math.round(baseline.mean)} records per active hour`,
    learned: true,
  };
}

/** Marks the current hour as one a learned baseline fired in (it will not be learned). */
export const firedThisHour = (baseline: VolumeBaseline): VolumeBaseline => ({ ...baseline, fired: true });
