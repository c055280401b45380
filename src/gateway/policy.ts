import type { CrmObject, ObjectMeta } from '../crm/index.js';
import {
  assertAuthorized,
  authorizeRequest,
  recordDecision,
  type AuthorizeResult,
  type PolicyCaches,
  type PolicySet,
  type Principal,
  type RecordedDecision,
  type RecordRef,
  type RowCondition,
  type RuntimeAction,
} from '../policy/index.js';
import { networkOf } from './pipeline.js';

/** What the authorize stage asks Cedar about one request (DESIGN.md "One request through the gateway"). */
export interface PolicyAsk {
  readonly requestId: string;
  readonly principal: Principal;
  readonly action: RuntimeAction;
  readonly object: CrmObject;
  /** Fields the request reads, writes, filters on, groups by or measures (names only). */
  readonly fields: readonly string[];
  /** Records returned or touched: the page size asked for a list, 0 for an aggregate, 1 otherwise. */
  readonly recordCount: number;
  /** The caller's network as Cedar sees it (callerNetwork). */
  readonly ip: string;
}

/**
 * The runtime policy the gateway enforces, decided by Cedar for every request, deny by default: a
 * denial is a 403 naming the policy and the library version. Each decision is recorded (its input,
 * never record contents) for `policy simulate`. The library is read through a getter, so a newly
 * published version takes effect without a restart.
 */
export interface RuntimePolicy {
  readonly version: string;
  /**
   * For records not known yet (a list, an aggregate, a create, or whether a record is visible at all):
   * Cedar with the record's territory, owner and account unknown, compiled into the row filter the
   * query must carry (a capability token's accounts included), or 403.
   */
  rows(ask: PolicyAsk): readonly RowCondition[];
  /** For one record whose attributes were fetched: returns when Cedar allows, else 403. */
  record(ask: PolicyAsk, record: RecordRef): void;
}

export interface RuntimePolicyOptions {
  /** The CRM's field metadata: the data classes of the fields a request names. */
  describe(object: CrmObject): ObjectMeta;
  /** The decision caches of this set of modules (the composition root's). */
  caches: PolicyCaches;
  /** Where decisions are recorded for simulation (the decision log); none in tools that only ask. */
  log?: { record(decision: RecordedDecision): void };
  now?: () => Date;
  /** Residency: the region of a record's territory, and a row filter's region conditions as CRM ones. */
  residency?: {
    regionOf(territory: string): string;
    conditions(where: readonly RowCondition[]): RowCondition[];
  };
}

export function cedarRuntimePolicy(current: () => PolicySet, options: RuntimePolicyOptions): RuntimePolicy {
  const now = options.now ?? (() => new Date());
  const classesOf = fieldClassLookup(options.describe);
  const inputOf = (ask: PolicyAsk, time: Date, resource?: RecordRef): DecisionInput => ({
    principal: ask.principal,
    action: ask.action,
    object: ask.object,
    ...(resource && { resource }),
    context: {
      fields: ask.fields,
      fieldClasses: classesOf(ask.object, ask.fields),
      recordCount: ask.recordCount,
      ip: ask.ip,
      time,
    },
  });
  const decide = (ask: PolicyAsk, resource?: RecordRef): AuthorizeResult => {
    const input = inputOf(ask, now(), resource);
    const result = authorizeRequest(current(), input, options.caches);
    options.log?.record(recordDecision(ask.requestId, input, result));
    return result;
  };
  // Row filters per principal: a principal is made once per verified token (stages.ts identify), so
  // this lives no longer than the token is accepted (authenticate refuses it first once it expires or
  // is revoked), and its key names the library version, so a new version decides afresh.
  const rowsByPrincipal = new WeakMap<Principal, Map<string, RowsDecision>>();
  return {
    get version() {
      return current().version;
    },
    rows(ask) {
      const policies = current();
      const time = now();
      let known = rowsByPrincipal.get(ask.principal);
      if (!known) rowsByPrincipal.set(ask.principal, (known = new Map()));
      const key = rowsKey(policies.version, ask, time);
      let decided = known.get(key);
      if (!decided) {
        const input = inputOf(ask, time);
        const result = authorizeRequest(policies, input, options.caches);
        decided = {
          recorded: recordDecision(ask.requestId, input, result),
          result,
          rows: result.allowed ? rowsOf(result, ask, options) : [],
        };
        if (known.size >= rowsPerPrincipal) known.clear();
        known.set(key, decided);
      }
      // Every request's decision is recorded for simulation, a remembered one too, under its own
      // request and time; the recorded input holds no time, so it is shared, not rebuilt.
      options.log?.record({ ...decided.recorded, requestId: ask.requestId, timestamp: time.toISOString() });
      assertAuthorized(decided.result);
      return decided.rows;
    },
    record(ask, record) {
      const region = options.residency?.regionOf(record.territory);
      assertAuthorized(decide(ask, region === undefined ? record : { ...record, region }));
    },
  };
}

type DecisionInput = Parameters<typeof recordDecision>[1];

/** A row-filter decision remembered for one principal: its record for simulation, its answer, the rows. */
interface RowsDecision {
  readonly recorded: RecordedDecision;
  readonly result: AuthorizeResult;
  readonly rows: readonly RowCondition[];
}

/** Row-filter decisions kept per principal; one token asks few distinct questions. */
const rowsPerPrincipal = 64;

/**
 * What a row-filter decision depends on besides the principal: the library version, the question, and
 * of the time only the UTC hour and weekday, which is all policies see of it.
 */
function rowsKey(version: string, ask: PolicyAsk, time: Date): string {
  return `${version}\n${ask.action}\n${ask.object}\n${ask.fields.join(',')}\n${ask.recordCount}\n${ask.ip}\n${time.getUTCHours()}/${time.getUTCDay()}`;
}

/** The row filter of an allowed decision, as the CRM takes it: residency resolved, a capability's accounts added. */
function rowsOf(
  result: AuthorizeResult,
  ask: PolicyAsk,
  options: RuntimePolicyOptions,
): readonly RowCondition[] {
  const where = result.where ?? [];
  const rows = options.residency ? options.residency.conditions(where) : where;
  return Object.freeze([...rows, ...capabilityRows(ask.principal, ask.object)]);
}

/** The distinct data classes of fields, memoized per object from the CRM's metadata. */
function fieldClassLookup(
  describe: (object: CrmObject) => ObjectMeta,
): (object: CrmObject, fields: readonly string[]) => string[] {
  const byObject = new Map<CrmObject, ReadonlyMap<string, string>>();
  return (object, fields) => {
    let classes = byObject.get(object);
    if (!classes) {
      classes = new Map(describe(object).fields.map((field) => [field.name, field.dataClass]));
      byObject.set(object, classes);
    }
    // An unknown name is refused later by the shape stage; until then it counts as internal.
    return [...new Set(fields.map((field) => classes.get(field) ?? 'internal'))].sort();
  };
}

/**
 * The caller's network as policies see it: IPv4 /24 or IPv6 /48 — what the audit event records, and
 * what decisions are cached and recorded under — with the IPv6 loopback kept as is (its /48 is not a
 * loopback range) and 0.0.0.0, which no network rule trusts, when the address is unknown. `network`
 * is networkOf(ip) when the caller has it already.
 */
export function callerNetwork(ip: string | undefined, network = networkOf(ip)): string {
  if (ip === '::1') return ip;
  return network === 'unknown' ? '0.0.0.0' : network;
}

/** The attributes a record-level decision needs, besides its id: never its contents. */
export function recordAttributeFields(object: CrmObject): string[] {
  return object === 'account' ? ['territory', 'owner'] : ['territory', 'owner', 'account_id'];
}

/** The policy view of a fetched record (recordAttributeFields must have been fetched). */
export function recordRefOf(
  object: CrmObject,
  id: string,
  record: Readonly<Record<string, unknown>>,
): RecordRef {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    id,
    territory: text(record.territory),
    owner: text(record.owner),
    account: object === 'account' ? id : text(record.account_id),
  };
}

/**
 * A capability token narrows every query to its accounts: the account itself by id, the records under
 * it by account_id. An empty list reaches nothing.
 */
export function capabilityRows(principal: Principal, object: string): RowCondition[] {
  if (!principal.accountIds) return [];
  const field = object === 'account' ? 'id' : 'account_id';
  return [{ field, op: 'in', value: principal.accountIds }];
}
