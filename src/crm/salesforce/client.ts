import type { Dispatcher } from 'undici';
import { SignJWT, type CryptoKey, type KeyObject } from 'jose';
import { DependencyUnavailable } from '../../errors/index.js';

/**
 * A small Salesforce REST client over fetch (Node's undici): the JWT bearer grant for a connected app
 * (RFC 7523), query with nextRecordsUrl followed, describe, and sObject create, update and delete. It
 * reads `Sforce-Limit-Info` on every answer and stops calling, before the org's daily allowance runs
 * out, once the reserve is reached. Salesforce failing (5xx, REQUEST_LIMIT_EXCEEDED, no answer) is a
 * DependencyUnavailable, which the gateway answers 503 and counts towards its circuit breaker.
 */

export interface SalesforceClientOptions {
  loginUrl: string;
  apiVersion: string;
  clientId: string;
  username: string;
  /** The connected app certificate's private key, from the secret store. */
  privateKey: () => Promise<CryptoKey | KeyObject>;
  timeoutMs: number;
  /** Percent of the daily allowance kept in reserve. */
  dailyReservePercent: number;
  now?: () => number;
  /** The connection pool trusting `crm.caFile` (src/crm/tls.ts); fetch's own when absent. */
  dispatcher?: Dispatcher;
}

export type SfRecord = Record<string, unknown>;

export interface SfError {
  message: string;
  errorCode: string;
  fields?: string[];
}

/** A refusal by Salesforce of a write's values (400), by errorCode; the message may echo values and is kept out. */
export class SalesforceRefusal extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    readonly fields: readonly string[],
  ) {
    super(`Salesforce answered ${status} ${errorCode}`);
  }
}

export interface SalesforceClient {
  /** Every record of the query, following nextRecordsUrl until done or at least `atMost` records. */
  query(soql: string, atMost?: number): Promise<{ totalSize: number; records: SfRecord[] }>;
  describe(sobject: string): Promise<SfRecord>;
  create(sobject: string, values: SfRecord): Promise<string>;
  /** `stale` when the record changed after `unmodifiedSince` (If-Unmodified-Since), `missing` when gone. */
  update(
    sobject: string,
    id: string,
    values: SfRecord,
    unmodifiedSince?: string,
  ): Promise<'updated' | 'stale' | 'missing'>;
  delete(sobject: string, id: string): Promise<boolean>;
  /** The daily API usage last reported in Sforce-Limit-Info. */
  usage(): { used: number; max: number } | undefined;
}

/** After the reserve is reached, one call a minute goes through to read the usage again. */
const reserveRecheckMs = 60_000;

export function createSalesforceClient(options: SalesforceClientOptions): SalesforceClient {
  const now = options.now ?? Date.now;
  let session: Promise<{ accessToken: string; instanceUrl: string }> | undefined;
  let usage: { used: number; max: number } | undefined;
  let reservedUntil = 0;

  const unavailable = (message: string, cause?: unknown) =>
    new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', message, { cause });

  async function login(): Promise<{ accessToken: string; instanceUrl: string }> {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(options.clientId)
      .setSubject(options.username)
      .setAudience(options.loginUrl)
      .setExpirationTime('3m')
      .sign(await options.privateKey());
    const response = await timed(`${options.loginUrl.replace(/\/$/, '')}/services/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion,
      }).toString(),
    });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok || typeof body.access_token !== 'string' || typeof body.instance_url !== 'string') {
      // error_description names the reason (user not pre-authorised, bad certificate); it holds no secret.
      throw unavailable(
        `Salesforce refused the connected app's JWT bearer grant (${String(body.error ?? response.status)})`,
        {
          status: response.status,
          error: body.error,
          description: body.error_description,
        },
      );
    }
    return { accessToken: body.access_token, instanceUrl: body.instance_url };
  }

  async function timed(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, {
        ...init,
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      } as RequestInit);
    } catch (error) {
      throw unavailable('Salesforce did not answer; retry shortly', error);
    }
  }

  function readUsage(response: Response): void {
    const match = /api-usage=(\d+)\/(\d+)/.exec(response.headers.get('sforce-limit-info') ?? '');
    if (!match) return;
    usage = { used: Number(match[1]), max: Number(match[2]) };
    const allowed = usage.max * (1 - options.dailyReservePercent / 100);
    reservedUntil = usage.used >= allowed ? now() + reserveRecheckMs : 0;
  }

  /** One REST call with the session, logging in again once when Salesforce says it expired. */
  async function call(path: string, init: RequestInit = {}, retried = false): Promise<Response> {
    if (now() < reservedUntil) {
      throw unavailable(
        `the Salesforce org's daily API allowance is used up to the ${options.dailyReservePercent}% Gatehouse keeps in reserve; retry later`,
      );
    }
    // A reserve recheck lets exactly one call through; the next answer's header decides again.
    if (reservedUntil !== 0) reservedUntil = now() + reserveRecheckMs;
    session ??= login().catch((error: unknown) => {
      session = undefined;
      throw error;
    });
    const { accessToken, instanceUrl } = await session;
    const url = path.startsWith('/')
      ? `${instanceUrl}${path}`
      : `${instanceUrl}/services/data/v${options.apiVersion}/${path}`;
    const response = await timed(url, {
      ...init,
      headers: { ...init.headers, authorization: `Bearer ${accessToken}`, accept: 'application/json' },
    });
    readUsage(response);
    if (response.status === 401 && !retried) {
      session = undefined;
      return call(path, init, true);
    }
    if (response.status >= 500 || response.status === 401) {
      throw unavailable(`Salesforce failed to answer (${response.status}); retry shortly`, {
        status: response.status,
        errors: await errorsOf(response),
      });
    }
    if (response.status === 403) {
      const errors = await errorsOf(response.clone());
      if (errors.some((e) => e.errorCode === 'REQUEST_LIMIT_EXCEEDED')) {
        reservedUntil = now() + reserveRecheckMs;
        throw unavailable("the Salesforce org's API request limit is exceeded; retry later", { errors });
      }
    }
    return response;
  }

  async function json(response: Response): Promise<SfRecord> {
    if (!response.ok) {
      const errors = await errorsOf(response);
      const first = errors[0];
      throw new SalesforceRefusal(response.status, first?.errorCode ?? 'UNKNOWN', first?.fields ?? []);
    }
    return (await response.json()) as SfRecord;
  }

  return {
    async query(soql, atMost = Number.POSITIVE_INFINITY) {
      let body = await json(await call(`query?q=${encodeURIComponent(soql)}`));
      const totalSize = Number(body.totalSize);
      const records = [...((body.records as SfRecord[]) ?? [])];
      // queryMore: Salesforce answers at most one batch (2000 by default) per call.
      while (body.done === false && typeof body.nextRecordsUrl === 'string' && records.length < atMost) {
        body = await json(await call(body.nextRecordsUrl));
        records.push(...((body.records as SfRecord[]) ?? []));
      }
      return { totalSize, records };
    },
    async describe(sobject) {
      return json(await call(`sobjects/${encodeURIComponent(sobject)}/describe`));
    },
    async create(sobject, values) {
      const body = await json(
        await call(`sobjects/${encodeURIComponent(sobject)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(values),
        }),
      );
      return String(body.id);
    },
    async update(sobject, id, values, unmodifiedSince) {
      const response = await call(`sobjects/${encodeURIComponent(sobject)}/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        headers: {
          'content-type': 'application/json',
          ...(unmodifiedSince ? { 'if-unmodified-since': unmodifiedSince } : {}),
        },
        body: JSON.stringify(values),
      });
      if (response.status === 412) return 'stale';
      if (response.status === 404) return 'missing';
      if (!response.ok) await json(response);
      return 'updated';
    },
    async delete(sobject, id) {
      const response = await call(`sobjects/${encodeURIComponent(sobject)}/${encodeURIComponent(id)}`, {
        method: 'DELETE',
      });
      if (response.status === 404) return false;
      if (!response.ok) await json(response);
      return true;
    },
    usage: () => usage,
  };
}

async function errorsOf(response: Response): Promise<SfError[]> {
  const body: unknown = await response.json().catch(() => []);
  return Array.isArray(body) ? (body as SfError[]) : [];
}
