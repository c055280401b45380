import { GatehouseError, type ErrorCode } from '../errors/index.js';

/** The codes this module answers with. */
export type LimitsReason = Extract<ErrorCode, 'BULK_EXPORT_BLOCKED' | 'CIRCUIT_OPEN' | 'LIMITS_UNAVAILABLE'>;

/** 503: the limit store could not answer, so the request was refused rather than let through unmetered. */
export class LimitsUnavailable extends GatehouseError {
  constructor(options: { cause?: unknown } = {}) {
    super(
      'LIMITS_UNAVAILABLE',
      'rate limits cannot be checked right now, so the request was refused; retry shortly',
      {
        cause: options.cause,
      },
    );
  }
}

/** 503 at once: the connector's circuit is open after repeated failures, so it was not called. */
export class CircuitOpen extends GatehouseError {
  /** Seconds until the circuit lets a trial call through; the HTTP layer sends it as Retry-After. */
  override readonly retryAfterSeconds: number;

  constructor(connector: string, retryAfterSeconds: number) {
    super(
      'CIRCUIT_OPEN',
      'the CRM is failing, so the request was refused without calling it; retry shortly',
      {
        extensions: { connector },
      },
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * 403: the user (through every app) or the app (all its users) has read as many distinct records of this
 * object as its export budget allows in the window. The body names the guard, the budget and its
 * threshold; never the records.
 */
export class BulkExportBlocked extends GatehouseError {
  constructor(decision: {
    budget: 'user' | 'app';
    threshold: number;
    event?: { object: string; windowSeconds: number };
  }) {
    super(
      'BULK_EXPORT_BLOCKED',
      decision.budget === 'user'
        ? 'you have read too many distinct records of this object recently, through this or other apps; the bulk-export guard refused the read'
        : 'this app has read far more distinct records of this object recently than its plan declares; the bulk-export guard refused the read',
      {
        extensions: {
          rule: 'bulk_export_guard',
          budget: decision.budget,
          threshold: decision.threshold,
          ...(decision.event
            ? { object: decision.event.object, window_seconds: decision.event.windowSeconds }
            : {}),
        },
      },
    );
  }
}
