import type { TokenBucket } from './config.js';

/**
 * A temporary, stricter limit (detection's containment) on one app, or on one user in one app; a new
 * throttle starts afresh.
 */
export interface Throttle {
  readonly bucket: TokenBucket;
  readonly untilMs: number;
  /** The incident that put it in force, named in the 429 its target gets. */
  readonly incident?: string;
  /**
   * Makes the bucket key new each time, so a throttle never inherits an earlier one's state; the same
   * on every node, so that with a shared bucket store the nodes draw on one bucket.
   */
  readonly generation: string;
}

/** What a throttle holds back: an app (all its users), or one user in one app (`throttleTarget`). */
export function throttleTarget(appId: string, userId?: string): string {
  return userId === undefined ? appId : JSON.stringify([appId, userId]);
}

/** The throttles in force, as this node knows them; keyed by `throttleTarget`. */
export interface ThrottleStore {
  /**
   * The app's throttle, unless it has none or it has ended by `nowMs`. Read on every request, so it
   * does no I/O: a shared store answers from what it last read.
   */
  current(appId: string, nowMs: number): Throttle | undefined;
  /**
   * Puts the app's throttle in force, under a new generation, replacing any earlier one; with a
   * shared store, on every node. Rejects when the store cannot confirm it; this node then enforces
   * nothing new.
   */
  put(
    appId: string,
    throttle: { bucket: TokenBucket; untilMs: number; incident?: string },
    nowMs: number,
  ): Promise<void>;
  /**
   * Lifts the app's throttle; with a shared store, on every node. Rejects when the store cannot
   * confirm it; this node then keeps enforcing the throttle until it ends.
   */
  lift(appId: string, nowMs: number): Promise<void>;
}

/** The throttle of `appId` in `held`, forgetting it once it has ended. */
export function inForce(held: Map<string, Throttle>, appId: string, nowMs: number): Throttle | undefined {
  const throttle = held.get(appId);
  if (throttle === undefined || nowMs < throttle.untilMs) return throttle;
  held.delete(appId);
  return undefined;
}

/** Throttles in this process: a change holds as soon as it is made (before the promise settles). */
export class MemoryThrottles implements ThrottleStore {
  readonly #held = new Map<string, Throttle>();
  #generation = 0;

  current(appId: string, nowMs: number): Throttle | undefined {
    return inForce(this.#held, appId, nowMs);
  }

  put(appId: string, throttle: { bucket: TokenBucket; untilMs: number; incident?: string }): Promise<void> {
    this.#generation += 1;
    this.#held.set(appId, { ...throttle, generation: String(this.#generation) });
    return Promise.resolve();
  }

  lift(appId: string): Promise<void> {
    this.#held.delete(appId);
    return Promise.resolve();
  }
}
