import type { Config } from '../config/index.js';
import { grantedFields, maskFor, type Action, type Principal } from '../policy/index.js';

/**
 * Which of a principal's scopes open what. A fieldset named `aggregate` (read:opportunity.aggregate)
 * opens aggregates only: it never opens a raw record, a list or a filter, or "aggregates without raw
 * records" (CONTRACT.md) would be one query away from raw records.
 */

export const aggregateFieldset = 'aggregate';

function isAggregateScope(scope: string): boolean {
  return scope.endsWith(`.${aggregateFieldset}`);
}

type Granted = { fields: ReadonlySet<string>; scopes: readonly string[] };

/**
 * Granted fields by configuration, principal, object and action. Both are immutable, and a token's
 * principal is the same object on every request (stages.ts identify), so this is worked out once per
 * token rather than on every request; entries go with the principal.
 */
const granted = new WeakMap<Config, WeakMap<Principal, Map<string, Granted>>>();

/** Fields of `object` the principal's record-level scopes open for `action`, and those scopes. */
export function recordFields(config: Config, principal: Principal, object: string, action: Action): Granted {
  let byPrincipal = granted.get(config);
  if (!byPrincipal) {
    byPrincipal = new WeakMap();
    granted.set(config, byPrincipal);
  }
  let known = byPrincipal.get(principal);
  if (!known) {
    known = new Map();
    byPrincipal.set(principal, known);
  }
  const key = `${action}:${object}`;
  let found = known.get(key);
  if (!found) {
    const scopes = principal.scopes.filter((scope) => !isAggregateScope(scope));
    found = grantedFields(config.scopes, scopes, object, action);
    known.set(key, found);
  }
  return found;
}

/** Fields of `object` the principal's aggregate scopes open, and those scopes. */
export function aggregateFields(
  config: Config,
  principal: Principal,
  object: string,
): { fields: ReadonlySet<string>; scopes: readonly string[] } {
  return grantedFields(config.scopes, principal.scopes.filter(isAggregateScope), object, 'read');
}

/** Whether the principal may read `object.field` of a record, unmasked. */
export function mayReadUnmasked(
  config: Config,
  principal: Principal,
  object: string,
  field: string,
): boolean {
  return (
    recordFields(config, principal, object, 'read').fields.has(field) &&
    maskFor(config.roles[principal.role], object, field) === 'none'
  );
}

/** The granted scopes whose fieldsets name any of `fields`: what the audit event says opened the request. */
export function scopesUsed(config: Config, scopes: readonly string[], fields: readonly string[]): string[] {
  return scopes.filter((scope) => config.scopes[scope]?.fields.some((f) => fields.includes(f)));
}
