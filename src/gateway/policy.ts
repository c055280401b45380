import { compileRowFilter, type PolicySet, type Principal, type RowCondition } from '../policy/index.js';

export type RowAction = 'read' | 'write' | 'aggregate';

/**
 * The runtime policy the gateway enforces: row filters compiled from the Cedar library by partial
 * evaluation (a denial is a 403 naming the policy), and the library's version for every audit event.
 * A getter, so a newly published library takes effect without a restart.
 */
export interface RuntimePolicy {
  readonly version: string;
  rows(principal: Principal, action: RowAction, object: string): RowCondition[];
}

export function cedarRuntimePolicy(current: () => PolicySet): RuntimePolicy {
  return {
    get version() {
      return current().version;
    },
    rows: (principal, action, object) => [
      ...compileRowFilter(current(), principal, action, object),
      ...capabilityRows(principal, object),
    ],
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
