import type { CatalogConfig } from '../config/index.js';
import type { RuntimeConstraints } from './apps.js';

/**
 * The runtime limits an approval gives an app, from its plan: budgets grow with the users it expects,
 * between a floor (a small team still gets a useful app) and a ceiling (no plan buys unlimited reads).
 */
export function constraintsFor(
  plan: { readonly expected_users: number },
  quota: CatalogConfig['quota'],
): RuntimeConstraints {
  const within = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));
  return {
    daily_quota: within(
      plan.expected_users * quota.requestsPerUserPerDay,
      quota.minDailyQuota,
      quota.maxDailyQuota,
    ),
    requests_per_minute: within(
      plan.expected_users * quota.requestsPerUserPerMinute,
      quota.minPerMinute,
      quota.maxPerMinute,
    ),
  };
}
