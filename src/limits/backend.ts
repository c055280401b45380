import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { MemoryDistinctWindow } from './distinct-window.js';

/**
 * Where limit state lives. Everything is async so that a Redis backend (RateLimiterRedis and a Lua
 * script over a sorted set) can replace the memory one without changing a caller.
 */
export interface LimitsBackend {
  /** A counter of points per key; keys expire after `customDuration` seconds. */
  counter(options: { keyPrefix: string; points: number; durationSeconds: number }): PointsCounter;
  /** The distinct ids each (app, object) read in a sliding window. */
  readonly distinct: DistinctWindowStore;
}

/**
 * The part of rate-limiter-flexible's limiter interface Gatehouse uses; RateLimiterMemory and
 * RateLimiterRedis both have it. `consume` rejects with a RateLimiterRes when the points are used up
 * and with an Error when the store fails; the two must never be confused, since the second fails closed.
 */
export interface PointsCounter {
  consume(key: string, points: number, options: { customDuration: number }): Promise<RateLimiterRes>;
  reward(key: string, points: number, options: { customDuration: number }): Promise<RateLimiterRes>;
}

export interface DistinctWindowStore {
  /**
   * Atomically, for one key: forgets ids last read at or before `nowMs - windowMs`; then, if the ids
   * already counted together with `ids` number at most `cap`, records every one of `ids` as read at
   * `nowMs` and answers admitted; otherwise changes nothing. `distinct` is the count after the call,
   * `attempted` the count the read would have reached.
   */
  admit(
    key: string,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
    cap: number,
  ): Promise<{ admitted: boolean; distinct: number; attempted: number }>;
}

/** The embedded backend: state in this process, bounded, gone on restart. */
export function memoryBackend(): LimitsBackend {
  return {
    counter: ({ keyPrefix, points, durationSeconds }) =>
      new RateLimiterMemory({ keyPrefix, points, duration: durationSeconds }),
    distinct: new MemoryDistinctWindow(),
  };
}
