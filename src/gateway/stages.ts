import { hash } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { CrmConnector, CrmIdentity, CrmObject, CrmRecord, FilterExpr } from '../crm/index.js';
import { maskValue, type FieldValue } from '../dlp/index.js';
import { NotFound, TokenError } from '../errors/index.js';
import { maskFor, selectReadFields, type Principal, type RowCondition } from '../policy/index.js';
import {
  consentCheck,
  consentCondition,
  consentFetchFields,
  consentLinked,
  consentObject,
  withholdPersonalData,
  type ConsentCheck,
} from './consent.js';
import { visiblePage } from './cursor.js';
import { filterFields, parseFilterParams } from './filter.js';
import { DlpTally, freeTextFields, outgoingRules, redactOutgoing } from './dlp.js';
import { recordAttributeFields } from './policy.js';
import { recordFields, scopesUsed } from './scopes.js';
import { checkFilter, consentInRows, filterTouchesWithheld, type CallerView } from './view.js';

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
  /** A capability token's narrowing: only these accounts and the records under them. */
  cap?: { readonly account_ids: readonly string[] };
}

/**
 * Principals by the verified claims they come from. The broker answers a cached token's claims as the
 * same (immutable) object on every use, so its principal is made once, and what the policy module
 * derives from a principal is kept across that token's requests.
 */
const principals = new WeakMap<TokenClaims, Principal>();

/** identify: the principal behind a verified token. */
export function identify(claims: TokenClaims): Principal {
  if (!claims.role) throw new TokenError('no_role', 'the access token carries no role');
  let principal = principals.get(claims);
  if (!principal) {
    principal = Object.freeze({
      userId: claims.sub,
      email: claims.email ?? claims.sub,
      role: claims.role,
      territory: claims.territory,
      appId: claims.app_id,
      clientId: claims.client_id,
      scopes: Object.freeze(claims.scope.split(' ').filter(Boolean)),
      accountIds: claims.cap?.account_ids,
    });
    principals.set(claims, principal);
  }
  return principal;
}

const byCrmTerritory = new WeakMap<Principal, Map<string, Principal>>();

/**
 * The principal as the connected CRM knows its user: with a vendor CRM (Salesforce, HubSpot) whose
 * user directory holds a territory for them, that territory is the one row filters use, not the
 * token's claim, so a territory moved in the CRM applies at its next directory refresh. Where the CRM
 * holds none (an org that keeps territories elsewhere), the IdP's claim stands.
 */
export function asCrmKnowsThem(principal: Principal, crmUser: CrmIdentity | undefined): Principal {
  const territory = crmUser?.territory;
  if (territory === undefined || territory === principal.territory) return principal;
  let known = byCrmTerritory.get(principal);
  if (!known) byCrmTerritory.set(principal, (known = new Map()));
  let found = known.get(territory);
  if (!found) {
    found = Object.freeze({ ...principal, territory });
    known.set(territory, found);
  }
  return found;
}

export interface ReadPlan {
  object: CrmObject;
  /** Exactly the fields the caller gets (`id` always comes too). */
  fields: string[];
  /** What is selected: `fields` and the internal fields the protect stage needs (consent flags, links). */
  fetch: string[];
  where: RowCondition[];
  /** Granted scopes that opened the fields; recorded in the audit event. */
  scopes: readonly string[];
}

/**
 * shape + authorize: the exact fields of a read, then the policy's decision on reading them — `rows`
 * asks Cedar with those fields and answers the row filter — or a 403 that says why.
 */
export function planRead(
  config: Config,
  principal: Principal,
  object: CrmObject,
  requested: readonly string[] | undefined,
  rows: (fields: readonly string[]) => readonly RowCondition[],
): ReadPlan {
  const granted = recordFields(config, principal, object, 'read');
  const fields = selectReadFields(granted.fields, requested);
  const where = [...rows(fields), ...consentWhere(config, principal, object)];
  const fetch = [...new Set([...fields, ...consentFetchFields(object)])];
  return { object, fields, fetch, where, scopes: scopesUsed(config, granted.scopes, fields) };
}

/**
 * The consent part of the row filter: in `exclude` mode (and always for aggregates, whose values cannot
 * be masked one record at a time) a contact without consent for the app's purpose stays in the store.
 */
export function consentWhere(
  config: Config,
  principal: Principal,
  object: CrmObject,
  mode: 'exclude' | 'mask' = config.gateway.consent.mode,
): RowCondition[] {
  return object === consentObject && mode === 'exclude' ? [consentCondition(config, principal)] : [];
}

/** protect, for one request: consent, field masks by role, and DLP of outgoing free text. */
export interface Protector {
  /** The record as this reader may see it, or undefined when it must not leave at all. */
  protect(record: CrmRecord): CrmRecord | undefined;
  readonly tally: DlpTally;
  /** Records left out or nulled for want of consent. */
  readonly withheld: number;
}

export function protector(
  config: Config,
  principal: Principal,
  object: CrmObject,
  fields: readonly string[],
  /** Whether each record may be processed for the app's purpose (consent.ts consentCheck); none: all. */
  consented?: ConsentCheck,
  /**
   * Leave out, rather than null, records without consent: when the caller's filter named a field they
   * show nulled, the filter ran on values the caller may not see, and a nulled value matches no filter.
   */
  filteredOnWithheld = false,
): Protector {
  const excluded = leavesOutWithoutConsent(config, filteredOnWithheld);
  const role = config.roles[principal.role];
  const shown = new Set(['id', ...fields]);
  const freeText = freeTextFields(config, object).filter((field) => shown.has(field));
  const rules = freeText.length > 0 ? outgoingRules(config, principal) : [];
  const tally = new DlpTally();
  let withheld = 0;
  return {
    tally,
    get withheld() {
      return withheld;
    },
    protect(record) {
      let source = record;
      if (consented && !consented(record)) {
        withheld += 1;
        // Contacts: the query already left these out in exclude mode (this holds if a connector did
        // not); notes about them are left out here.
        if (excluded) return undefined;
        source = withholdPersonalData(object, record);
      }
      const out: Record<string, FieldValue> = {};
      for (const [field, value] of Object.entries(source)) {
        if (!shown.has(field)) continue;
        out[field] = field === 'id' ? value : maskValue(value, maskFor(role, object, field));
      }
      return redactOutgoing(freeText, rules, out, tally);
    },
  };
}

/**
 * Whether records without consent are left out (exclude mode, or a filter on fields they show nulled)
 * rather than shown with personal fields nulled.
 */
function leavesOutWithoutConsent(config: Config, filteredOnWithheld: boolean): boolean {
  return config.gateway.consent.mode === 'exclude' || filteredOnWithheld;
}

/** protect for a list: the records that may leave, each as this reader may see it. */
export function protectAll(guard: Protector, records: readonly CrmRecord[]): CrmRecord[] {
  const out: CrmRecord[] = [];
  for (const record of records) {
    const safe = guard.protect(record);
    if (safe) out.push(safe);
  }
  return out;
}

/** `N records returned; dlp redacted 2 (phone)`: what the audit event says a read did, without values. */
export function readReason(count: number, guard: Protector): string {
  const parts = [`${count} record${count === 1 ? '' : 's'} returned`];
  if (guard.withheld > 0) parts.push(`${guard.withheld} withheld for consent`);
  const dlp = guard.tally.describe();
  if (dlp) parts.push(dlp);
  return parts.join('; ');
}

/**
 * Filters a client may add on top of the row filter, as the caller's view allows them (view.ts
 * checkFilter): only fields shown whole, and order comparisons only on numbers and dates. `filterable`
 * narrows the view's fields further (an aggregate's dimensions).
 */
export function parseFilters(
  view: CallerView,
  filters: readonly string[],
  filterable?: ReadonlySet<string>,
): FilterExpr | undefined {
  const expr = parseFilterParams(filters);
  if (!expr) return undefined;
  checkFilter(view, expr, filterable);
  return expr;
}

/**
 * fetch + protect for a list: one page of the records the caller's view shows, from a cursor position.
 * A filter naming fields that a record without consent shows nulled holds only for consenting records
 * (in the query for contacts, whose rows carry consent; per page for notes), as it would on the nulls.
 * Records left out for consent are skipped by fetching on (cursor.ts visiblePage).
 */
export async function fetchVisiblePage(
  crm: CrmConnector,
  config: Config,
  principal: Principal,
  plan: ReadPlan,
  view: CallerView,
  request: { filter?: FilterExpr; limit: number; start?: string },
): Promise<{ page: { records: CrmRecord[]; next?: string }; protect: Protector }> {
  const { object } = plan;
  const { filter } = request;
  const onWithheld = filterTouchesWithheld(view, filter ? filterFields(filter) : []);
  const where =
    onWithheld && consentInRows(view) ? [...plan.where, consentCondition(config, principal)] : plan.where;
  const leavesOut = leavesOutWithoutConsent(config, onWithheld);
  const consent = new Map<CrmRecord, boolean>();
  const page = await visiblePage(
    async (position, limit) => {
      const fetched = await crm.query(object, { fields: plan.fetch, where, filter, limit, cursor: position });
      const check = await consentCheck(crm, config, principal, object, fetched.records);
      for (const record of fetched.records) consent.set(record, !check || check(record));
      return {
        records: leavesOut ? fetched.records.filter((record) => consent.get(record)) : fetched.records,
        nextCursor: fetched.nextCursor,
      };
    },
    request.limit,
    request.start,
    leavesOut && consentLinked(object),
  );
  const consented = (record: CrmRecord) => consent.get(record) ?? false;
  return { page, protect: protector(config, principal, object, plan.fields, consented, onWithheld) };
}

/**
 * fetch, for one record: its planned fields, `updated_at` (for its ETag) and the attributes its policy
 * decision needs (territory, owner, account; protect shows only the planned fields), or 404.
 */
export async function fetchRecord(crm: CrmConnector, plan: ReadPlan, id: string): Promise<CrmRecord> {
  const fields = [...new Set([...plan.fetch, versionField, ...recordAttributeFields(plan.object)])];
  const record = await crm.get(plan.object, id, fields, plan.where);
  // Missing and hidden look the same: a 404 never reveals that a record of another territory exists.
  if (!record) throw new NotFound();
  return record;
}

/** The field a record's version is read from; the connector sets it on every write. */
export const versionField = 'updated_at';

/**
 * The strong ETag of a record version: a digest of its id and last-modified time. The time is internal
 * metadata of a record the caller can already read; that it changed is exactly what an ETag tells.
 */
export function etagOf(record: CrmRecord): string {
  const version = `${String(record.id)}\n${String(record[versionField])}`;
  return `"${hash('sha256', version, 'base64url').slice(0, 27)}"`;
}
