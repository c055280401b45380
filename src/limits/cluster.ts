/**
 * Limits shared by the worker processes of one `gatehouse serve --workers N` without Redis: the
 * counters (token buckets, distinct-read windows) live in the primary process, which every worker asks
 * per check, so a limit of K allows K across the workers, not N × K. Throttles, read on every request
 * without I/O, are held by each worker and changed everywhere (through the primary) before a change
 * is confirmed.
 */
import {
  memoryBackend,
  type Admission,
  type BucketSpec,
  type DistinctWindowStore,
  type LimitsBackend,
} from './backend.js';
import { admitInTurn } from './distinct-window.js';
import type { TokenBucket } from './config.js';
import { inForce, type Throttle, type ThrottleStore } from './throttles.js';

/** How a worker reaches the primary: one request, one answer (rejects when the primary cannot answer). */
export interface LimitsChannel {
  request(kind: 'take' | 'admit' | 'throttle', payload: unknown): Promise<unknown>;
}

interface TakeAsk {
  buckets: readonly BucketSpec[];
  cost: number;
  nowMs: number;
}
interface AdmitAsk {
  key: string;
  ids: readonly string[];
  nowMs: number;
  windowMs: number;
  cap: number;
}
/** A throttle to put in force (`throttle` set) or lift (absent). */
export interface ThrottleChange {
  appId: string;
  throttle?: { bucket: TokenBucket; untilMs: number; incident?: string };
}

/** A worker's backend: counters in the primary, throttles held here and applied by `applyThrottle`. */
export function primaryHeldBackend(channel: LimitsChannel): LimitsBackend & {
  applyThrottle(appId: string, throttle: Throttle | undefined): void;
} {
  const held = new Map<string, Throttle>();
  const admit: DistinctWindowStore['admit'] = async (key, ids, nowMs, windowMs, cap) =>
    (await channel.request('admit', { key, ids, nowMs, windowMs, cap } satisfies AdmitAsk)) as Admission;
  const throttles: ThrottleStore = {
    current: (appId, nowMs) => inForce(held, appId, nowMs),
    async put(appId, throttle) {
      await channel.request('throttle', { appId, throttle } satisfies ThrottleChange);
    },
    async lift(appId) {
      await channel.request('throttle', { appId } satisfies ThrottleChange);
    },
  };
  return {
    buckets: {
      take: async (buckets, cost, nowMs) =>
        (await channel.request('take', { buckets, cost, nowMs } satisfies TakeAsk)) as {
          allowed: boolean;
          tokens: number[];
        },
    },
    distinct: {
      admit,
      admitEach: (windows, ids, nowMs, windowMs) => admitInTurn(admit, windows, ids, nowMs, windowMs),
    },
    throttles,
    applyThrottle(appId, throttle) {
      if (throttle) held.set(appId, throttle);
      else held.delete(appId);
    },
  };
}

/**
 * The primary's side: the one set of counters, and the throttle generations. `throttle` answers the
 * throttle every worker must now hold for the app (undefined: lifted); the caller tells them all.
 */
export function limitsHub(): {
  take(ask: unknown): Promise<unknown>;
  admit(ask: unknown): Promise<unknown>;
  throttle(change: unknown): { appId: string; throttle: Throttle | undefined };
} {
  const backend = memoryBackend();
  let generation = 0;
  return {
    take: (ask) => {
      const { buckets, cost, nowMs } = ask as TakeAsk;
      return backend.buckets.take(buckets, cost, nowMs);
    },
    admit: (ask) => {
      const { key, ids, nowMs, windowMs, cap } = ask as AdmitAsk;
      return backend.distinct.admit(key, ids, nowMs, windowMs, cap);
    },
    throttle: (change) => {
      const { appId, throttle } = change as ThrottleChange;
      generation += 1;
      return { appId, throttle: throttle && { ...throttle, generation: `primary-${generation}` } };
    },
  };
}
