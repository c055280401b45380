import type { Config } from '../config/index.js';
import type { CrmConnector, CrmObject, CrmRecord } from '../crm/index.js';
import { maskValue, type FieldValue } from '../dlp/index.js';
import { InputError, NotFound, TokenError } from '../errors/index.js';
import {
  grantedFields,
  maskFor,
  rowFilter,
  selectReadFields,
  type Principal,
  type RowCondition,
} from '../policy/index.js';

/**
 * The stages of one gateway request (DESIGN.md "One request through the gateway"), each a function
 * with one job. The route handlers in routes.ts run them in order.
 */

/** The claims of a verified access token the gateway relies on. */
export interface TokenClaims {
  sub: string;
  client_id: string;
  app_id: string;
  scope: string;
  email?: string;
  role?: string;
  territory?: string;
}

/** authenticate: the bearer token from the Authorization header, verified by the broker. */
export function bearerToken(header: string | undefined): string {
  if (!header) throw new TokenError('TOKEN_MISSING', 'send an access token as "Authorization: Bearer <token>"');
  const match = /^Bearer ([A-Za-z0-9\-_.~+/]+=*)$/.exec(header);
  if (!match) throw new TokenError('TOKEN_INVALID', 'the Authorization header is not a Bearer token');
  return match[1] as string;
}

/** identify: the principal behind a verified token. */
export function identify(claims: TokenClaims): Principal {
  if (!claims.role) throw new TokenError('TOKEN_INVALID', 'the access token carries no role');
  return {
    userId: claims.sub,
    email: claims.email ?? claims.sub,
    role: claims.role,
    territory: claims.territory,
    appId: claims.app_id,
    clientId: claims.client_id,
    scopes: claims.scope.split(' ').filter(Boolean),
  };
}

export interface ReadPlan {
  object: CrmObject;
  fields: string[];
  where: RowCondition[];
  /** Granted scopes that opened the fields; recorded in the audit event. */
  scopes: readonly string[];
}

/** authorize + shape: the exact fields and row filter of a read, or a 403 that says why. */
export function planRead(
  config: Config,
  principal: Principal,
  object: CrmObject,
  requested: readonly string[] | undefined,
): ReadPlan {
  const granted = grantedFields(config.scopes, principal.scopes, object, 'read');
  const fields = selectReadFields(granted.fields, requested);
  const where = rowFilter(principal, config.roles[principal.role]);
  const used = granted.scopes.filter((scope) => config.scopes[scope]?.fields.some((f) => fields.includes(f)));
  return { object, fields, where, scopes: used };
}

/** protect: masks each field as the principal's role requires; the unmasked value never leaves. */
export function protectRecord(config: Config, principal: Principal, object: CrmObject, record: CrmRecord): CrmRecord {
  const role = config.roles[principal.role];
  const out: Record<string, FieldValue> = {};
  for (const [field, value] of Object.entries(record)) {
    out[field] = field === 'id' ? value : maskValue(value, maskFor(role, object, field));
  }
  return out;
}

/**
 * Filters a client may add on top of the row filter: `field=value`, on fields it may read unmasked
 * (filtering on a masked field would let it guess the hidden value one query at a time).
 */
export function parseFilters(
  config: Config,
  principal: Principal,
  plan: ReadPlan,
  filters: readonly string[],
): RowCondition[] {
  const granted = grantedFields(config.scopes, principal.scopes, plan.object, 'read').fields;
  const role = config.roles[principal.role];
  return filters.map((filter) => {
    const eq = filter.indexOf('=');
    const field = eq > 0 ? filter.slice(0, eq) : '';
    if (!/^[a-z_]+$/.test(field)) throw new InputError('filter must look like field=value', { parameter: 'filter' });
    if (!granted.has(field) || maskFor(role, plan.object, field) !== 'none') {
      throw new InputError(`cannot filter on ${field}: it is not readable unmasked with the granted scopes`, {
        parameter: 'filter',
      });
    }
    return { field, op: 'eq', value: filter.slice(eq + 1) };
  });
}

export async function fetchRecord(crm: CrmConnector, plan: ReadPlan, id: string): Promise<CrmRecord> {
  const record = await crm.get(plan.object, id, plan.fields, plan.where);
  // Missing and hidden look the same: a 404 never reveals that a record of another territory exists.
  if (!record) throw new NotFound();
  return record;
}
