import type { CrmConnector } from '../crm/index.js';
import { DependencyUnavailable, GatehouseError } from '../errors/index.js';
import type { CircuitBreaker } from '../limits/index.js';

/**
 * The connector as the gateway uses it: every CRM call through the connector's circuit breaker, so a
 * failing CRM is refused fast (503 CIRCUIT_OPEN) instead of piling up requests that time out. A failure
 * of the CRM itself becomes 503 DEPENDENCY_UNAVAILABLE; coded answers (not found, bad input) and
 * programming mistakes (TypeError) pass through unchanged.
 */
export function breakerConnector(crm: CrmConnector, breaker: CircuitBreaker): CrmConnector {
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await breaker.run(fn);
    } catch (error) {
      if (error instanceof GatehouseError || error instanceof TypeError) throw error;
      throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the CRM failed to answer; retry shortly', {
        cause: error,
      });
    }
  };
  return {
    name: crm.name,
    describe: (object) => crm.describe(object),
    get: (object, id, fields, where) => call(() => crm.get(object, id, fields, where)),
    query: (object, req) => call(() => crm.query(object, req)),
    count: (object, where) => call(() => crm.count(object, where)),
    create: (object, values) => call(() => crm.create(object, values)),
    update: (object, id, values, where) => call(() => crm.update(object, id, values, where)),
    delete: (object, id, where) => call(() => crm.delete(object, id, where)),
    aggregate: (object, req) => call(() => crm.aggregate(object, req)),
  };
}
