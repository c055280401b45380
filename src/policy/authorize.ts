import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { policyDenied } from './errors.js';
import type { PolicySet } from './library.js';
import { Lru } from './lru.js';
import { dataClasses, defaultFieldClasses } from './manifest.js';
import { compileResiduals } from './residual.js';
import type { Principal, RowCondition } from './runtime.js';

/**
 * Runtime authorization: may this user, through this app, do this to that record? The gateway's
 * authorize stage asks here. Cedar decides with the policy set pre-parsed for its version; a decision
 * is cached under every input Cedar sees (so a cached answer is exactly what Cedar would say) and the
 * version (so a new library never reuses an old answer). Deny by default, and any evaluation error
 * denies: Cedar skips a policy that errors, which for a forbid would mean allowing.
 */

export const runtimeActions = ['read', 'write', 'export', 'aggregate'] as const;
export type RuntimeAction = (typeof runtimeActions)[number];

const entityTypes: Readonly<Record<string, string>> = {
  account: 'Gatehouse::Account',
  contact: 'Gatehouse::Contact',
  opportunity: 'Gatehouse::Opportunity',
  note: 'Gatehouse::Note',
};

/** The row condition field a region condition is answered under (see Residency). */
export const regionField = 'region';

/** The record attributes row filters are compiled over: Cedar unknown → connector field, per object. */
function rowFieldsOf(object: string): ReadonlyMap<string, string> {
  return new Map([
    ['resource.territory', 'territory'],
    ['resource.owner', 'owner'],
    // An account is its own account; every other record names its account in account_id.
    ['resource.account', object === 'account' ? 'id' : 'account_id'],
    // Not a connector field: the gateway turns a condition on the region into one on the field it comes from.
    ['resource.region', regionField],
  ]);
}
const rowFields: Readonly<Record<string, ReadonlyMap<string, string>>> = Object.fromEntries(
  Object.keys(entityTypes).map((object) => [object, rowFieldsOf(object)]),
);

/** The attributes of one record that policies see: never its contents. */
export interface RecordRef {
  readonly id: string;
  readonly territory: string;
  /** The owner of the record's account: the user the account is assigned to. */
  readonly owner: string;
  /** The record's account id (an account's own id); empty when it hangs off no account. */
  readonly account?: string;
  /** The record's region (residency); empty when its value places it in none. */
  readonly region?: string;
}

/** What the request carries besides who and what (schema type RequestContext). */
export interface RequestContext {
  /** Fields read, written, filtered on, grouped by or measured; none when absent. */
  readonly fields?: readonly string[];
  /** The data classes of `fields`; derived from the default classification when absent. */
  readonly fieldClasses?: readonly string[];
  /** Records returned or touched (the page size asked for a list); 1 when absent. */
  readonly recordCount?: number;
  /** The caller's address or network (`10.1.2.0/24`); 0.0.0.0 (matches no network rule) when absent. */
  readonly ip?: string;
  /** Arrival time; now when absent. Only its UTC hour and weekday reach the policies. */
  readonly time?: Date;
}

export interface AuthorizeInput {
  readonly principal: Principal;
  readonly action: RuntimeAction;
  readonly object: string;
  /** The record; absent for a list, an aggregate or a create (then the row filter is computed). */
  readonly resource?: RecordRef;
  readonly context?: RequestContext;
}

export interface AuthorizeResult {
  readonly allowed: boolean;
  /** Allowed: the permits that matched. Denied: the forbids that matched (none when no permit matched). */
  readonly policyIds: readonly string[];
  /** The `@reason` of each policy id, or why the request was denied. */
  readonly reasons: readonly string[];
  readonly version: string;
  /** Without a resource and allowed: the row filter every record must satisfy. */
  readonly where?: readonly RowCondition[];
}

/**
 * What decisions keep between calls: answers, and what they derive from a library or a principal. One
 * instance per set of modules (the composition root builds it and the gateway decides with it); a
 * replay, a test run or a unit test brings its own, so that nothing is shared by accident and none
 * evicts the answers live requests use.
 */
export interface PolicyCaches {
  readonly decisions: Lru<AuthorizeResult>;
  readonly rowFilters: Lru<AuthorizeResult>;
  /** Per library: the runtime policies that can apply to a request shape (partialPolicies). */
  readonly partialSets: WeakMap<PolicySet, Map<string, Record<string, cedar.PolicyJson>>>;
  /** Per principal: what Cedar and the cache keys make of it (principalFacts). */
  readonly principals: WeakMap<Principal, PrincipalFacts>;
}

export function createPolicyCaches(): PolicyCaches {
  return {
    decisions: new Lru<AuthorizeResult>(10_000),
    rowFilters: new Lru<AuthorizeResult>(2_000),
    partialSets: new WeakMap(),
    principals: new WeakMap(),
  };
}

export function authorizeRequest(
  policies: PolicySet,
  input: AuthorizeInput,
  caches: PolicyCaches,
): AuthorizeResult {
  checkInput(input);
  if (!input.resource)
    return rowFilterDecision(policies, input.principal, input.action, input.object, input.context, caches);
  const facts = principalFacts(input.principal, caches);
  const context = requestContext(facts, input.principal, input.object, input.context ?? {}, false);
  const resource = input.resource;
  const key = JSON.stringify([
    policies.version,
    facts.key,
    input.action,
    input.object,
    policies.runtimeUsesRecordIds ? resource.id : '',
    resource.territory,
    resource.owner,
    resource.account ?? '',
    resource.region ?? '',
    context,
  ]);
  const cached = caches.decisions.get(key);
  if (cached) return cached;

  const principal = facts.entity;
  const uid = { type: entityTypes[input.object] as string, id: resource.id };
  const answer = cedar.statefulIsAuthorized({
    principal: principal.uid,
    action: { type: 'Gatehouse::Action', id: input.action },
    resource: uid,
    context,
    preparsedPolicySetId: policies.preparsed.runtime,
    preparsedSchemaName: policies.preparsed.schema,
    validateRequest: true,
    entities: [
      principal,
      {
        uid,
        attrs: {
          territory: resource.territory,
          owner: resource.owner,
          account: resource.account ?? '',
          data_class: objectClass(input.object),
          ...(input.principal.residency && { region: resource.region ?? '' }),
        },
        parents: [],
      },
    ],
  });
  let result: AuthorizeResult;
  if (answer.type === 'failure') {
    result = denied(
      policies,
      ['evaluation-error'],
      answer.errors.map((e) => e.message),
    );
  } else if (answer.response.diagnostics.errors.length > 0) {
    const errors = answer.response.diagnostics.errors;
    result = denied(
      policies,
      errors.map((e) => e.policyId),
      errors.map((e) => `policy ${e.policyId} failed to evaluate, which denies: ${e.error.message}`),
    );
  } else {
    const ids = [...answer.response.diagnostics.reason].sort();
    result = Object.freeze({
      allowed: answer.response.decision === 'allow',
      policyIds: ids,
      reasons: ids.length > 0 ? reasonsOf(policies, ids) : [defaultDenyReason],
      version: policies.version,
    });
  }
  caches.decisions.set(key, result);
  return result;
}

/**
 * The row filter of a list, aggregate or create: the conditions every record must meet, compiled from
 * the residuals of partial evaluation with the record's territory and owner unknown. Throws a 403
 * (POLICY_DENIED naming the policy and version) when nothing is visible or when a residual cannot be
 * translated exactly. Context members left out are unknown: a policy that depends on one fails closed.
 */
export function compileRowFilter(
  policies: PolicySet,
  input: Omit<AuthorizeInput, 'resource'>,
  caches: PolicyCaches,
): RowCondition[] {
  checkInput(input);
  const { principal, action, object, context } = input;
  const decision = rowFilterDecision(policies, principal, action, object, context, caches);
  if (!decision.allowed) throw denial(decision);
  return [...(decision.where ?? [])];
}

/** Throws the 403 of a denied decision; returns nothing when allowed. */
export function assertAuthorized(result: AuthorizeResult): void {
  if (!result.allowed) throw denial(result);
}

function denial(result: AuthorizeResult): Error {
  const named =
    result.policyIds.length > 0 ? `denied by policy ${result.policyIds.join(', ')}` : 'denied by default';
  return policyDenied(
    `${named}: ${result.reasons[0] ?? defaultDenyReason}`,
    result.policyIds,
    result.version,
  );
}

const defaultDenyReason = 'no policy permits this request';

function rowFilterDecision(
  policies: PolicySet,
  principal: Principal,
  action: RuntimeAction,
  object: string,
  given: RequestContext | undefined,
  caches: PolicyCaches,
): AuthorizeResult {
  const facts = principalFacts(principal, caches);
  const context = requestContext(facts, principal, object, given ?? {}, true);
  // Keyed by the whole principal, not only role and territory: a policy may name the user.
  const key = JSON.stringify([policies.version, facts.key, action, object, context]);
  const cached = caches.rowFilters.get(key);
  if (cached) return cached;

  let result: AuthorizeResult;
  if (policies.runtimeUsesRecordIds) {
    // A residual cannot say "every record but this one"; refuse rather than guess.
    result = denied(
      policies,
      ['record-specific-policy'],
      ['a runtime policy names a record by id, so lists fail closed'],
    );
  } else {
    const user = facts.entity;
    const uid = { type: entityTypes[object] as string, id: '__row__' };
    const answer = cedar.isAuthorizedPartial({
      principal: user.uid,
      action: { type: 'Gatehouse::Action', id: action },
      resource: uid,
      context,
      policies: { staticPolicies: partialPolicies(policies, action, object, caches) },
      entities: [
        user,
        {
          uid,
          attrs: {
            territory: unknown('resource.territory'),
            owner: unknown('resource.owner'),
            account: unknown('resource.account'),
            data_class: objectClass(object),
            ...(principal.residency && { region: unknown('resource.region') }),
          },
          parents: [],
        },
      ],
    });
    if (answer.type === 'failure') {
      result = denied(
        policies,
        ['evaluation-error'],
        answer.errors.map((e) => e.message),
      );
    } else {
      const effects = new Map([...policies.policies.values()].map((p) => [p.id, p.effect] as const));
      const outcome = compileResiduals(
        answer.response,
        effects,
        rowFields[object] as ReadonlyMap<string, string>,
        new Map(principal.residency ? [[regionField, principal.residency.regions]] : []),
      );
      if (outcome.allowed) {
        result = Object.freeze({
          allowed: true,
          policyIds: outcome.policyIds,
          reasons: reasonsOf(policies, outcome.policyIds),
          version: policies.version,
          where: Object.freeze(outcome.where),
        });
      } else {
        const reasons = outcome.untranslatable
          ? [`${outcome.untranslatable}; failing closed`]
          : outcome.policyIds.length > 0
            ? reasonsOf(policies, outcome.policyIds)
            : [defaultDenyReason];
        result = denied(policies, outcome.policyIds, reasons);
      }
    }
  }
  caches.rowFilters.set(key, result);
  return result;
}

/**
 * The runtime policies that can apply to `action` on `object`, as JSON, for partial evaluation (which
 * has no pre-parsed form and parses what it is given on every call). A policy whose action or resource
 * type scope excludes the request could only leave a `false` residual; leaving it out changes nothing
 * and roughly halves the work. Computed once per library version and request shape.
 */
function partialPolicies(
  policies: PolicySet,
  action: RuntimeAction,
  object: string,
  caches: PolicyCaches,
): Record<string, cedar.PolicyJson> {
  let byShape = caches.partialSets.get(policies);
  if (!byShape) {
    byShape = new Map();
    caches.partialSets.set(policies, byShape);
  }
  const shape = `${action}:${object}`;
  const known = byShape.get(shape);
  if (known) return known;
  const type = entityTypes[object] as string;
  const subset: Record<string, cedar.PolicyJson> = {};
  for (const [id, text] of Object.entries(policies.runtimeText)) {
    const json = cedar.policyToJson(text);
    // The library was validated when it was loaded, so every policy converts.
    if (json.type === 'failure') throw new TypeError(`policy ${id} could not be converted to JSON`);
    if (mayApply(json.json, action, type)) subset[id] = json.json;
  }
  byShape.set(shape, subset);
  return subset;
}

function uidOf(uid: cedar.EntityUidJson): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid;
}

/** Conservative: true unless the policy's scope names other actions, or another resource type. */
function mayApply(policy: cedar.PolicyJson, action: string, type: string): boolean {
  const a = policy.action;
  const actionUid = { type: 'Gatehouse::Action', id: action };
  const same = (uid: cedar.EntityUidJson) => {
    const { type: t, id } = uidOf(uid);
    return t === actionUid.type && id === actionUid.id;
  };
  const isRuntimeAction = (uid: cedar.EntityUidJson) =>
    uidOf(uid).type === actionUid.type && (runtimeActions as readonly string[]).includes(uidOf(uid).id);
  if (a.op === '==' && 'entity' in a && !same(a.entity)) return false;
  if (a.op === 'in') {
    const listed = 'entities' in a ? a.entities : [a.entity];
    // An action group could contain the action; only a list of plain runtime actions can rule it out.
    if (listed.every(isRuntimeAction) && !listed.some(same)) return false;
  }
  const r = policy.resource;
  if (r.op === 'is' && r.entity_type !== type) return false;
  if (r.op === '==' && 'entity' in r && uidOf(r.entity).type !== type) return false;
  return true;
}

function denied(
  policies: PolicySet,
  policyIds: readonly string[],
  reasons: readonly string[],
): AuthorizeResult {
  return Object.freeze({
    allowed: false,
    policyIds: [...policyIds],
    reasons: [...reasons],
    version: policies.version,
  });
}

function reasonsOf(policies: PolicySet, ids: readonly string[]): string[] {
  return ids.map((id) => policies.policies.get(id)?.reason ?? id);
}

function checkInput(input: { principal: Principal; action: string; object: string }): void {
  // Programming mistakes of the caller, not untrusted input.
  if (!(runtimeActions as readonly string[]).includes(input.action))
    throw new TypeError(`unknown action ${input.action}`);
  if (!Object.hasOwn(entityTypes, input.object)) throw new TypeError(`unknown CRM object ${input.object}`);
  if (!input.principal?.userId || !input.principal.role)
    throw new TypeError('principal needs userId and role');
}

/** What Cedar and the caches make of a principal, worked out once per principal object. */
export interface PrincipalFacts {
  /** Its scopes, each once, sorted: as the context and recorded decisions carry them. */
  readonly scopes: readonly string[];
  /** Everything about it a decision depends on, for the cache keys. */
  readonly key: readonly unknown[];
  readonly entity: cedar.EntityJson & { uid: { type: string; id: string } };
}

/**
 * Principals are immutable and the gateway asks several decisions of the same one (a row filter and
 * the record, and the same token's principal from request to request), so the derived parts are kept
 * beside the object rather than rebuilt, and go with it.
 */
function principalFacts(principal: Principal, caches: PolicyCaches): PrincipalFacts {
  let facts = caches.principals.get(principal);
  if (!facts) {
    const { userId, email, role, territory, appId } = principal;
    const scopes = sortedScopes(principal);
    facts = {
      scopes,
      key: Object.freeze([
        userId,
        email,
        role,
        territory ?? null,
        appId,
        [...principal.scopes].sort(),
        principal.residency?.regions ?? null,
      ]),
      entity: {
        uid: { type: 'Gatehouse::User', id: userId },
        attrs: { email, role, ...(territory ? { territory } : {}) },
        parents: [{ type: 'Gatehouse::Role', id: role }],
      },
    };
    caches.principals.set(principal, facts);
  }
  return facts;
}

/** The principal's scopes, each once, sorted (what the Cedar context and a recorded decision carry). */
export function sortedScopes(principal: Principal): readonly string[] {
  return Object.freeze([...new Set(principal.scopes)].sort());
}

function unknown(name: string): cedar.CedarValueJson {
  return { __extn: { fn: 'unknown', arg: name } };
}

/** The Cedar context; members the caller left out are `unknown` in partial mode, defaults otherwise. */
function requestContext(
  facts: PrincipalFacts,
  principal: Principal,
  object: string,
  given: RequestContext,
  partial: boolean,
): cedar.Context {
  // Cedar's partial evaluator stops folding `context.x` when the context record holds both an unknown
  // and an extension value (the ip), so in partial mode one missing member makes the ip unknown too.
  const incomplete =
    partial && [given.fields, given.recordCount, given.time, given.ip].some((v) => v === undefined);
  const pick = <T>(
    value: T | undefined,
    name: string,
    fallback: () => cedar.CedarValueJson,
    wrap: (v: T) => cedar.CedarValueJson,
  ) => (value !== undefined ? wrap(value) : partial ? unknown(`context.${name}`) : fallback());
  const residency = principal.residency;
  return {
    app: principal.appId,
    ...(residency && {
      residency: { app_region: residency.region, transfers: [...new Set(residency.transfers)].sort() },
    }),
    scopes: facts.scopes as string[],
    fields: pick(
      given.fields,
      'fields',
      () => [],
      (f) => [...new Set(f)].sort(),
    ),
    field_classes: pick(
      given.fieldClasses ?? (given.fields && fieldClassesOf(object, given.fields)),
      'field_classes',
      () => [],
      (c) => [...new Set(c)].sort(),
    ),
    record_count: pick(
      given.recordCount,
      'record_count',
      () => 1,
      (n) => n,
    ),
    hour: pick(
      given.time,
      'hour',
      () => new Date().getUTCHours(),
      (t) => t.getUTCHours(),
    ),
    weekday: pick(
      given.time,
      'weekday',
      () => new Date().getUTCDay(),
      (t) => t.getUTCDay(),
    ),
    ip: pick(
      incomplete ? undefined : given.ip,
      'ip',
      () => ({ __extn: { fn: 'ip', arg: '0.0.0.0' } }),
      (ip) => ({ __extn: { fn: 'ip', arg: ip } }),
    ),
  };
}

const classRank = (cls: string) => (dataClasses as readonly string[]).indexOf(cls);

/** The classes of `object`'s fields by the default classification (unnamed fields are internal). */
export function fieldClassesOf(object: string, fields: readonly string[]): string[] {
  return fields.map((field) => defaultFieldClasses[`${object}.${field}`] ?? 'internal');
}

/** The most sensitive class among an object's fields. */
function objectClass(object: string): string {
  let best = 'internal';
  for (const [key, cls] of Object.entries(defaultFieldClasses)) {
    if (key.startsWith(`${object}.`) && classRank(cls) > classRank(best)) best = cls;
  }
  return best;
}
