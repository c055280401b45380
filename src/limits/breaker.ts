import { GatehouseError } from '../errors/index.js';
import type { BreakerConfig } from './config.js';
import { CircuitOpen } from './errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreaker {
  /**
   * Calls `fn` unless the circuit is open, in which case it throws CircuitOpen (503) at once. Errors
   * from `fn` pass through unchanged; those that mean the CRM failed count towards opening.
   */
  run<T>(fn: () => Promise<T>): Promise<T>;
  readonly state: BreakerState;
}

/**
 * Whether an error from a connector call means the connector failed. A coded error below 500 (not
 * found, bad input, denied) is an answer from a working CRM, so it neither opens nor keeps open.
 */
export function isConnectorFailure(error: unknown): boolean {
  return !(error instanceof GatehouseError && error.status < 500);
}

/**
 * Per process, as circuit breakers usually are: each gateway node judges the connector by its own
 * calls, and opening one node's circuit early or late is harmless. Consecutive failures open it; after
 * `openSeconds` one trial call goes through (others still fail fast) and its outcome closes or reopens.
 */
export class Breaker implements CircuitBreaker {
  readonly #connector: string;
  readonly #config: BreakerConfig;
  readonly #now: () => number;
  readonly #isFailure: (error: unknown) => boolean;
  #failures = 0;
  #openUntil: number | undefined;
  #trial = false;

  constructor(
    connector: string,
    config: BreakerConfig,
    now: () => number,
    isFailure: (error: unknown) => boolean = isConnectorFailure,
  ) {
    this.#connector = connector;
    this.#config = config;
    this.#now = now;
    this.#isFailure = isFailure;
  }

  get state(): BreakerState {
    if (this.#openUntil === undefined) return 'closed';
    return this.#now() < this.#openUntil && !this.#trial ? 'open' : 'half-open';
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#openUntil !== undefined) {
      const now = this.#now();
      if (now < this.#openUntil) {
        throw new CircuitOpen(this.#connector, Math.max(1, Math.ceil((this.#openUntil - now) / 1000)));
      }
      if (this.#trial) throw new CircuitOpen(this.#connector, 1);
      this.#trial = true;
    }
    const trial = this.#trial;
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      if (this.#isFailure(error)) this.#failed(trial);
      else this.#succeeded(trial);
      throw error;
    }
    this.#succeeded(trial);
    return value;
  }

  /** Outcomes of calls that started before the circuit opened say nothing about it now. */
  #stale(trial: boolean): boolean {
    return !trial && this.#openUntil !== undefined;
  }

  #succeeded(trial: boolean): void {
    if (this.#stale(trial)) return;
    this.#failures = 0;
    this.#openUntil = undefined;
    this.#trial = false;
  }

  #failed(trial: boolean): void {
    if (this.#stale(trial)) return;
    this.#failures += 1;
    if (trial || this.#failures >= this.#config.failureThreshold) {
      this.#openUntil = this.#now() + this.#config.openSeconds * 1000;
      this.#trial = false;
    }
  }
}
