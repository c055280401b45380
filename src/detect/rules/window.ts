/** Small pure helpers the rules share: event time, bucketed sliding windows and repeat spacing. */
import type { AuditEvent } from '../../audit/index.js';

/** The last event secondsOf parsed: every rule asks it of the same event in turn, so it is parsed once. */
let lastEvent: AuditEvent | undefined;
let lastTimestamp = '';
let lastSeconds = NaN;

/** Seconds since the epoch of an event's timestamp; NaN when it is not a time. */
export function secondsOf(event: AuditEvent): number {
  // Keyed by the object and its timestamp: an event object changed in place is parsed again.
  if (event !== lastEvent || event.timestamp !== lastTimestamp) {
    lastEvent = event;
    lastTimestamp = event.timestamp;
    lastSeconds = Date.parse(event.timestamp) / 1000;
  }
  return lastSeconds;
}

/** Events of the data plane that hand out records (aggregates hand out none). */
export function isRecordRead(event: AuditEvent): boolean {
  return (
    (event.action === 'crm.read' || event.action === 'crm.list') &&
    event.outcome === 'allow' &&
    (event.record_count ?? 0) > 0
  );
}

/** A sliding window in at most `slots` buckets: counts and a few evidence indexes per bucket. */
export interface Bucket {
  readonly t: number;
  readonly n: number;
  readonly idx: readonly number[];
}
export type Window = readonly Bucket[];

const slots = 20;
const indexesPerBucket = 5;

/** Adds `n` at time `t` (seconds) with evidence `index`, dropping buckets older than the window. */
export function addToWindow(window: Window, t: number, n: number, index: number, seconds: number): Window {
  const width = Math.max(1, Math.ceil(seconds / slots));
  const start = Math.floor(t / width) * width;
  const kept = window.filter((b) => b.t > t - seconds - width);
  const last = kept[kept.length - 1];
  if (last && last.t === start) {
    const idx = last.idx.length < indexesPerBucket ? [...last.idx, index] : [...last.idx.slice(1), index];
    return [...kept.slice(0, -1), { t: start, n: last.n + n, idx }];
  }
  return [...kept, { t: start, n, idx: [index] }];
}

export function windowTotal(window: Window): number {
  return window.reduce((sum, b) => sum + b.n, 0);
}

export function windowEvidence(window: Window): number[] {
  return window.flatMap((b) => b.idx);
}

/** Whether a key may fire again: never fired, or fired at least `repeatSeconds` ago. */
export function mayFire(
  fired: Readonly<Record<string, number>>,
  key: string,
  t: number,
  repeatSeconds: number,
) {
  const last = fired[key];
  return last === undefined || t - last >= repeatSeconds;
}

/** The record without keys whose value `stale` says is finished; keeps states bounded. */
export function pruned<T>(
  record: Readonly<Record<string, T>>,
  stale: (value: T) => boolean,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [key, value] of Object.entries(record)) if (!stale(value)) out[key] = value;
  return out;
}

/** `key=value` pairs of a reason such as the bulk-export guard's (names and numbers only). */
export function reasonFields(reason: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of reason.matchAll(/([a-z_]+)=([A-Za-z0-9_.:-]+)/g)) out[match[1]] = match[2];
  return out;
}
