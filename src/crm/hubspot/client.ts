import type { Dispatcher } from 'undici';
import { InputError, RateLimited } from '../../errors/index.js';

/**
 * A small HubSpot API client over Node's fetch (undici). `@hubspot/api-client` was not used: it retries
 * 429s and 5xx by itself and hides the rate-limit headers, while Gatehouse must refuse fast, open its
 * circuit on 5xx and read `X-HubSpot-RateLimit-*`; and its generated models are not needed to send
 * explicit property lists (src/crm/README.md).
 */

export interface HubSpotClientOptions {
  /** `https://api.hubapi.com`, or the fake's loopback URL. */
  baseUrl: string;
  /** The private-app access token, read from Gatehouse's secrets for every request (rotation takes effect at once). */
  token: () => Promise<string>;
  /** Requests are refused locally once the portal's daily remaining calls fall to this many. */
  dailyReserve: number;
  /** A call taking longer fails (and counts towards the circuit breaker). */
  timeoutMs: number;
  now?: () => number;
  /** The connection pool trusting `crm.caFile` (src/crm/tls.ts); fetch's own when absent. */
  dispatcher?: Dispatcher;
}

/**
 * An error answer of HubSpot: status, category and correlation id (what HubSpot support asks for). Not
 * HubSpot's message, which can quote a record's values, and this error is logged.
 */
export class HubSpotError extends Error {
  constructor(
    readonly status: number,
    readonly category: string,
    readonly correlationId: string,
  ) {
    super(`HubSpot answered ${status} ${category} (correlation id ${correlationId || 'none'})`);
  }
}

export interface HubSpotClient {
  request<T>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<T | undefined>;
}

/** What the last rate-limit headers said; HubSpot sends none on search answers. */
interface Budget {
  dailyRemaining?: number;
  /** The daily count is trusted until the next UTC midnight (HubSpot resets it at the portal's midnight). */
  dailyUntil: number;
  /** No call before this time: the interval's calls were used up. */
  waitUntil: number;
}

export function createHubSpotClient(options: HubSpotClientOptions): HubSpotClient {
  const now = options.now ?? Date.now;
  const base = options.baseUrl.replace(/\/+$/, '');
  const budget: Budget = { waitUntil: 0, dailyUntil: 0 };

  return {
    async request<T>(method: string, path: string, body?: unknown): Promise<T | undefined> {
      refuseOverBudget(budget, options.dailyReserve, now());
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${await options.token()}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      } as RequestInit);
      readBudget(budget, response.headers, now());
      if (response.status === 404 && method !== 'POST') return undefined;
      if (response.status === 204) return undefined;
      const text = await response.text();
      if (response.ok) return text === '' ? undefined : (JSON.parse(text) as T);
      throw answerError(response, text, now());
    },
  };
}

function refuseOverBudget(budget: Budget, reserve: number, at: number): void {
  if (budget.dailyRemaining !== undefined && budget.dailyRemaining <= reserve && at < budget.dailyUntil) {
    throw new RateLimited('RATE_LIMITED', 'crm-daily', secondsToUtcMidnight(at));
  }
  if (at < budget.waitUntil) {
    throw new RateLimited('RATE_LIMITED', 'crm', Math.max(1, Math.ceil((budget.waitUntil - at) / 1000)));
  }
}

function readBudget(budget: Budget, headers: Headers, at: number): void {
  const number = (name: string) => {
    const value = headers.get(name);
    return value !== null && /^\d+$/.test(value) ? Number(value) : undefined;
  };
  const daily = number('x-hubspot-ratelimit-daily-remaining');
  if (daily !== undefined) {
    budget.dailyRemaining = daily;
    budget.dailyUntil = at + secondsToUtcMidnight(at) * 1000;
  }
  const remaining = number('x-hubspot-ratelimit-remaining');
  const interval = number('x-hubspot-ratelimit-interval-milliseconds');
  if (remaining === 0 && interval !== undefined) budget.waitUntil = at + interval;
  if (number('x-hubspot-ratelimit-secondly-remaining') === 0)
    budget.waitUntil = Math.max(budget.waitUntil, at + 1000);
}

/**
 * An error answer as Gatehouse's errors: 429 a rate limit (HubSpot's `policyName` and `Retry-After`
 * say how long), 5xx and authentication failures a failure of the CRM (circuit breaker, 503), 400 a
 * request HubSpot refused (validation), anything else a failure too.
 */
function answerError(response: Response, text: string, at: number): Error {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page, say): the status alone tells what happened.
  }
  const category =
    typeof body.category === 'string'
      ? body.category
      : typeof body.errorType === 'string'
        ? body.errorType
        : 'UNKNOWN';
  const correlationId = typeof body.correlationId === 'string' ? body.correlationId : '';
  if (response.status === 429) {
    const policy = typeof body.policyName === 'string' ? body.policyName : '';
    const header = Number(response.headers.get('retry-after'));
    const seconds =
      Number.isFinite(header) && header > 0
        ? Math.ceil(header)
        : policy === 'DAILY'
          ? secondsToUtcMidnight(at)
          : policy === 'TEN_SECONDLY_ROLLING'
            ? 10
            : 1;
    return new RateLimited('RATE_LIMITED', policy === 'DAILY' ? 'crm-daily' : 'crm', seconds);
  }
  if (response.status === 400 && category === 'VALIDATION_ERROR') {
    // HubSpot refused a value it validates itself (an enumeration option, say): the caller's input.
    return new InputError('HubSpot refused a value of this request; check the values against the CRM', {
      crm_correlation_id: correlationId,
    });
  }
  return new HubSpotError(response.status, category, correlationId);
}

function secondsToUtcMidnight(at: number): number {
  const day = 86_400_000;
  return Math.max(1, Math.ceil((day - (at % day)) / 1000));
}
