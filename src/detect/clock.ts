/**
 * Time as the composition root hands it out: real time in production, a simulated clock when
 * `gatehouse simulate` (or a test) plays days of traffic in seconds. Detection, the limits (rates,
 * budgets, throttles) and the gateway's audit events read it; token lifetimes stay on real time.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to, and never backwards. */
export interface SimulatedClock extends Clock {
  /** Moves to `ms` since the epoch (a moment already passed leaves it where it is). */
  set(ms: number): void;
  advance(ms: number): void;
}

export function simulatedClock(startMs: number): SimulatedClock {
  let at = startMs;
  return {
    now: () => at,
    set(ms) {
      at = Math.max(at, ms);
    },
    advance(ms) {
      at += Math.max(0, ms);
    },
  };
}
