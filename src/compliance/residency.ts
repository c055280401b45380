import type { ResidencyConfig } from '../config/index.js';
import type { Residency, RowCondition } from '../policy/index.js';

/**
 * Residency (DESIGN.md, compliance): which region a record resides in, where an app runs and which
 * regions' records its plan may receive. Policies decide (policies/runtime/residency.cedar); these are
 * the facts they decide on, and the translation of their row filter back into the CRM's own field.
 */

/** What an app's plan says about residency (manifest `residency`). */
export interface PlanResidency {
  readonly region: string;
  readonly transfers: readonly string[];
}

/** The region a record with this value of the residency field resides in; '' when no region lists it. */
export function regionOf(config: ResidencyConfig, value: string): string {
  for (const [region, values] of Object.entries(config.regions)) if (values.includes(value)) return region;
  return '';
}

/** The app's residency as policies see it: its plan's, else the home region with no transfers. */
export function appResidency(config: ResidencyConfig, plan: PlanResidency | undefined): Residency {
  return {
    region: plan?.region ?? config.home,
    transfers: plan?.transfers ?? [],
    regions: Object.keys(config.regions).sort(),
  };
}

/**
 * A row filter with its region conditions (the policy's `resource.region`) turned into conditions on
 * the residency field: "region in R" is "field in the values of R". A region listing no value leaves
 * an empty `in`, which matches nothing.
 */
export function residencyConditions(
  config: ResidencyConfig,
  regionField: string,
  where: readonly RowCondition[],
): RowCondition[] {
  return where.map((condition) => {
    if (condition.field !== regionField) return condition;
    const regions = condition.op === 'eq' ? [condition.value] : condition.value;
    const values = regions.flatMap((region) => config.regions[region] ?? []);
    return { field: config.field, op: 'in', value: [...new Set(values)].sort() };
  });
}

/**
 * How an audit event names the transfers a request may make under the app's plan (`EU>US`: records
 * resident in the EU served to an app in the US), or undefined when the plan makes none.
 */
export function transferOf(residency: Residency): string | undefined {
  const from = residency.transfers.filter((region) => region !== residency.region);
  return from.length > 0 ? `${[...new Set(from)].sort().join(',')}>${residency.region}` : undefined;
}
