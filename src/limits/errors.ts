import { GatehouseError, type ErrorCode } from '../errors/index.js';

/**
 * The precise codes this module answers with. Until the error registry has them they are sent as the
 * registered code with the same status, and the precise one travels in the problem's `reason` member;
 * once the registry has them, `registered` below maps each to itself.
 */
export type LimitsReason = 'CIRCUIT_OPEN' | 'LIMITS_UNAVAILABLE';

const registered: Record<LimitsReason, ErrorCode> = {
  CIRCUIT_OPEN: 'DEPENDENCY_UNAVAILABLE',
  LIMITS_UNAVAILABLE: 'DEPENDENCY_UNAVAILABLE',
};

/** 503: the limit store could not answer, so the request was refused rather than let through unmetered. */
export class LimitsUnavailable extends GatehouseError {
  readonly reason = 'LIMITS_UNAVAILABLE' satisfies LimitsReason;

  constructor(options: { cause?: unknown } = {}) {
    super(registered.LIMITS_UNAVAILABLE, 'rate limits cannot be checked right now, so the request was refused; retry shortly', {
      cause: options.cause,
      extensions: { reason: 'LIMITS_UNAVAILABLE' },
    });
  }
}

/** 503 at once: the connector's circuit is open after repeated failures, so it was not called. */
export class CircuitOpen extends GatehouseError {
  readonly reason = 'CIRCUIT_OPEN' satisfies LimitsReason;
  /** Seconds until the circuit lets a trial call through; the HTTP layer sends it as Retry-After. */
  readonly retryAfterSeconds: number;

  constructor(connector: string, retryAfterSeconds: number) {
    super(registered.CIRCUIT_OPEN, 'the CRM is failing, so the request was refused without calling it; retry shortly', {
      extensions: { reason: 'CIRCUIT_OPEN', connector },
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
