import type { Config } from '../config/index.js';
import type {
  AggregateFn,
  AggregateGroup,
  CrmConnector,
  CrmObject,
  FilterExpr,
  Metric,
} from '../crm/index.js';
import { AccessDenied, InputError } from '../errors/index.js';
import { maskFor, type Principal, type RowCondition } from '../policy/index.js';
import { aggregateFields, scopesUsed } from './scopes.js';
import { consentCondition, consentLinked } from './consent.js';
import { aggregateLinked } from './linked-aggregate.js';
import { consentWhere, parseFilters } from './stages.js';

/**
 * Aggregates (CONTRACT.md `GET /crm/v1/{object}/aggregate?group_by=f&metric=sum(amount)`): counts and
 * metrics over the policy-filtered records, computed in the store, with groups too small to hide an
 * individual suppressed. Only aggregate scopes open them, and a masked field is neither grouped by nor
 * measured: a group or a min/max of one would hand back the value the mask hides.
 */

export interface AggregateQuery {
  groupBy?: string;
  metrics: Metric[];
  filter: string[];
}

const fieldName = /^[a-z_]{1,64}$/;
const metricPattern = /^(count|sum|avg|min|max)\(([a-z_]{0,64})\)$/;
const maxMetrics = 8;

/** Parses untrusted query parameters; anything malformed is a 422 naming the parameter. */
export function parseAggregateQuery(query: Record<string, unknown>): AggregateQuery {
  for (const key of Object.keys(query)) {
    if (!['group_by', 'metric', 'filter'].includes(key)) {
      throw new InputError(`unknown query parameter ${key.slice(0, 64)}; allowed: group_by, metric, filter`, {
        parameter: key.slice(0, 64),
      });
    }
  }
  const groupBy = query.group_by;
  if (groupBy !== undefined && (typeof groupBy !== 'string' || !fieldName.test(groupBy))) {
    throw new InputError('group_by must name one field', { parameter: 'group_by' });
  }
  const rawMetrics = query.metric === undefined ? ['count'] : [query.metric].flat().map(String);
  if (rawMetrics.length > maxMetrics)
    throw new InputError(`at most ${maxMetrics} metrics`, { parameter: 'metric' });
  const metrics = rawMetrics.map(parseMetric);
  const filter = query.filter === undefined ? [] : [query.filter].flat().map(String);
  if (filter.length > 8) throw new InputError('at most 8 filters', { parameter: 'filter' });
  return { groupBy, metrics, filter };
}

function parseMetric(text: string): Metric {
  if (text === 'count') return { fn: 'count' };
  const match = metricPattern.exec(text);
  if (!match) {
    throw new InputError('metric must be count, or sum, avg, min or max of a field, as in sum(amount)', {
      parameter: 'metric',
    });
  }
  const fn = match[1] as AggregateFn;
  const field = match[2] as string;
  if (fn === 'count') {
    if (field !== '') throw new InputError('count takes no field', { parameter: 'metric' });
    return { fn };
  }
  if (field === '') throw new InputError(`${fn} needs a field, as in ${fn}(amount)`, { parameter: 'metric' });
  return { fn, field };
}

export interface AggregatePlan {
  object: CrmObject;
  groupBy?: string;
  metrics: Metric[];
  where: RowCondition[];
  /** The caller's own filter, ANDed inside the row filter by the connector. */
  filter?: FilterExpr;
  scopes: readonly string[];
  /** For records that follow a contact's consent (notes): the contacts' consent condition. */
  linkedConsent?: RowCondition;
}

/** authorize + shape for an aggregate: the fields must be opened by an aggregate scope and unmasked. */
export function planAggregate(
  config: Config,
  principal: Principal,
  object: CrmObject,
  crm: CrmConnector,
  query: AggregateQuery,
  rows: readonly RowCondition[],
): AggregatePlan {
  const granted = aggregateFields(config, principal, object);
  if (granted.fields.size === 0) {
    throw new AccessDenied(
      'SCOPE_MISSING',
      `aggregates of ${object} need an aggregate scope, such as read:${object}.aggregate`,
    );
  }
  const named = [
    ...(query.groupBy ? [query.groupBy] : []),
    ...query.metrics.flatMap((m) => (m.field ? [m.field] : [])),
  ];
  const outside = [...new Set(named.filter((field) => !granted.fields.has(field)))];
  if (outside.length > 0) {
    throw new AccessDenied(
      'FIELD_NOT_ALLOWED',
      `fields outside the granted aggregate scopes: ${outside.join(', ')}`,
      {
        fields: outside,
      },
    );
  }
  const role = config.roles[principal.role];
  const masked = [...new Set(named.filter((field) => maskFor(role, object, field) !== 'none'))];
  if (masked.length > 0) {
    throw new InputError(`masked fields cannot be grouped by or measured: ${masked.join(', ')}`, {
      fields: masked,
    });
  }
  const types = new Map(crm.describe(object).fields.map((f) => [f.name, f.type]));
  for (const metric of query.metrics) {
    const type = metric.field ? types.get(metric.field) : 'number';
    const ordered = type === 'date' || type === 'datetime';
    if (!(type === 'number' || ((metric.fn === 'min' || metric.fn === 'max') && ordered))) {
      throw new InputError(`${metric.fn}(${metric.field}) needs a number field`, { parameter: 'metric' });
    }
  }
  const where = [
    ...rows,
    // Aggregated values cannot be masked one contact at a time, so contacts without consent are left out.
    ...consentWhere(config, principal, object, 'exclude'),
  ];
  const filter = parseFilters(
    config,
    principal,
    { object },
    query.filter,
    unmasked(config, principal, object, granted.fields),
  );
  return {
    object,
    groupBy: query.groupBy,
    metrics: query.metrics,
    where,
    filter,
    scopes: scopesUsed(config, granted.scopes, named),
    ...(consentLinked(object) && { linkedConsent: consentCondition(config, principal) }),
  };
}

function unmasked(
  config: Config,
  principal: Principal,
  object: string,
  fields: ReadonlySet<string>,
): Set<string> {
  const role = config.roles[principal.role];
  return new Set([...fields].filter((field) => maskFor(role, object, field) === 'none'));
}

export interface AggregateAnswer {
  groups: Record<string, string | number | null>[];
  suppressed_groups: number;
}

/** fetch + protect: runs the aggregate in the store and suppresses groups below the minimum size. */
export async function runAggregate(
  crm: CrmConnector,
  config: Config,
  plan: AggregatePlan,
): Promise<AggregateAnswer> {
  const { minGroupSize, maxGroups } = config.gateway.aggregate;
  const request = {
    groupBy: plan.groupBy,
    metrics: plan.metrics,
    where: plan.where,
    filter: plan.filter,
    limit: maxGroups,
  };
  // Notes about contacts without consent are left out one by one: the store cannot join to the contact.
  const result = plan.linkedConsent
    ? await aggregateLinked(crm, plan.object, request, plan.linkedConsent)
    : await crm.aggregate(plan.object, request);
  if (result.truncated) {
    throw new InputError(`more than ${maxGroups} groups; group by a field with fewer values`, {
      parameter: 'group_by',
    });
  }
  const kept = result.groups.filter((group) => group.count >= minGroupSize);
  return {
    groups: kept.map((group) => groupAnswer(plan, group)),
    suppressed_groups: result.groups.length - kept.length,
  };
}

/** `{ stage: "Closed Won", count: 12, sum_amount: 340000 }` */
function groupAnswer(plan: AggregatePlan, group: AggregateGroup): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  if (plan.groupBy) out[plan.groupBy] = group.key;
  out.count = group.count;
  plan.metrics.forEach((metric, i) => {
    if (metric.fn !== 'count') out[`${metric.fn}_${metric.field}`] = group.values[i] ?? null;
  });
  return out;
}
