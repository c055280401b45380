import { AccessDenied } from '../errors/index.js';

/**
 * Runtime decisions of the gateway as small pure functions over configuration: which fields a set of
 * scopes opens, which rows a principal may see, and which mask a role gets for a field.
 */

export type Action = 'read' | 'write';

export interface Fieldset {
  readonly object: string;
  readonly fields: readonly string[];
}

export interface RolePolicy {
  readonly scopes: readonly string[];
  readonly masks: Readonly<Record<string, string>>;
}

/** Who is asking: a user acting through an app, with the scopes granted to that pair. */
export interface Principal {
  readonly userId: string;
  readonly email: string;
  readonly role: string;
  readonly territory: string | undefined;
  readonly appId: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** Set by a capability token: the caller may reach only these accounts, whatever the scopes say. */
  readonly accountIds?: readonly string[] | undefined;
  /**
   * Set by the gateway from the app's approved plan: the purpose it processes contacts for. Absent when
   * the plan names none (configuration `gateway.consent.appPurposes` decides then).
   */
  readonly consentPurpose?: string | undefined;
  /** Set by the gateway from the app's plan and the residency configuration; absent: no residency rules. */
  readonly residency?: Residency | undefined;
}

/** Where an app runs and which regions' records it may receive; what policies see as `context.residency`. */
export interface Residency {
  /** The region the app runs and stores in. */
  readonly region: string;
  /** Regions whose records the app's plan may receive (transfers with a lawful mechanism). */
  readonly transfers: readonly string[];
  /** Every region a record can be in: the vocabulary a row filter on the region is expressed over. */
  readonly regions: readonly string[];
}

/** A condition pushed into the connector query; all conditions of a filter must hold (AND). */
export type RowCondition =
  | { readonly field: string; readonly op: 'eq'; readonly value: string }
  | { readonly field: string; readonly op: 'in'; readonly value: readonly string[] };

/** The fields of `object` that the principal's scopes open for `action`, and the scopes that opened them. */
export function grantedFields(
  fieldsets: Readonly<Record<string, Fieldset>>,
  scopes: readonly string[],
  object: string,
  action: Action,
): { fields: ReadonlySet<string>; scopes: readonly string[] } {
  const fields = new Set<string>();
  const used: string[] = [];
  for (const scope of scopes) {
    const set = fieldsets[scope];
    if (!set || set.object !== object || !scope.startsWith(`${action}:`)) continue;
    used.push(scope);
    for (const field of set.fields) fields.add(field);
  }
  return { fields, scopes: used };
}

/**
 * The exact field list of a read: every granted field when none is named, else the named ones, each of
 * which must be granted. Naming a field outside the scopes is a 403 that names it, never a silent drop.
 */
export function selectReadFields(
  granted: ReadonlySet<string>,
  requested: readonly string[] | undefined,
): string[] {
  if (granted.size === 0)
    throw new AccessDenied('SCOPE_MISSING', 'no granted scope allows reading this object');
  if (!requested || requested.length === 0) return [...granted];
  const outside = requested.filter((field) => !granted.has(field));
  if (outside.length > 0) {
    throw new AccessDenied('FIELD_NOT_ALLOWED', `fields outside the granted scopes: ${outside.join(', ')}`, {
      fields: outside,
    });
  }
  return [...new Set(requested)];
}

/** The mask a role gets for `object.field`; `none` when the role's policy names none. */
export function maskFor(role: RolePolicy | undefined, object: string, field: string): string {
  return role?.masks[`${object}.${field}`] ?? 'none';
}
