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
import type { Principal, RowCondition } from '../policy/index.js';
import { aggregateFields, scopesUsed } from './scopes.js';
import { consentCondition, consentLinked } from './consent.js';
import { aggregateLinked } from './linked-aggregate.js';
import { filterFields } from './filter.js';
import { consentWhere, parseFilters } from './stages.js';
import { aggregateDimensions, aggregateMonthFields, aggregateView } from './view.js';

/**
 * Aggregates (CONTRACT.md `GET /crm/v1/{object}/aggregate?group_by=f&metric=sum(amount)`): counts and
 * metrics over the policy-filtered records, computed in the store, with groups too small to hide an
 * individual suppressed. Only aggregate scopes open them, and a masked field is neither grouped by nor
 * measured: a group or a min/max of one would hand back the value the mask hides.
 */

export interface AggregateQuery {
  groupBy?: string;
  /** `group_by=close_date:month`: groups by the month of a date. */
  bucket?: 'month';
  metrics: Metric[];
  filter: string[];
}

const groupByPattern = /^([a-z_]{1,64})(:month)?$/;
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
  const groupMatch = query.group_by === undefined ? undefined : groupByPattern.exec(String(query.group_by));
  if (query.group_by !== undefined && (typeof query.group_by !== 'string' || !groupMatch)) {
    throw new InputError('group_by must name one field, or a date field by month as in close_date:month', {
      parameter: 'group_by',
    });
  }
  const groupBy = groupMatch?.[1];
  const bucket = groupMatch?.[2] ? ('month' as const) : undefined;
  const rawMetrics = query.metric === undefined ? ['count'] : [query.metric].flat().map(String);
  if (rawMetrics.length > maxMetrics)
    throw new InputError(`at most ${maxMetrics} metrics`, { parameter: 'metric' });
  const metrics = rawMetrics.map(parseMetric);
  const filter = query.filter === undefined ? [] : [query.filter].flat().map(String);
  if (filter.length > 8) throw new InputError('at most 8 filters', { parameter: 'filter' });
  return { groupBy, ...(bucket && { bucket }), metrics, filter };
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

/**
 * What an aggregate asked, for its audit reason: the grouping and every filter as sent. A filter here
 * only ever names dimensions (categories such as a stage), never a measure or a personal field.
 */
export function aggregateAsked(query: AggregateQuery): string {
  const parts = [
    ...(query.groupBy ? [`group_by ${groupKey(query.groupBy, query.bucket)}`] : []),
    ...query.filter.map((filter) => `filter ${filter.slice(0, 200)}`),
  ];
  return parts.map((part) => `${part}; `).join('');
}

export interface AggregatePlan {
  object: CrmObject;
  groupBy?: string;
  bucket?: 'month';
  metrics: Metric[];
  where: RowCondition[];
  /** The caller's own filter, ANDed inside the row filter by the connector. */
  filter?: FilterExpr;
  /** The dimensions the filter names. */
  filterFields: string[];
  scopes: readonly string[];
  /** For records that follow a contact's consent (notes): the contacts' consent condition. */
  linkedConsent?: RowCondition;
}

/**
 * authorize + shape for an aggregate, from the caller's aggregate view: the fields must be opened by an
 * aggregate scope and shown whole. Filters are limited to the dimensions (view.ts aggregateDimensions);
 * with a group_by, only to the grouped field, so a filter only ever selects whole groups: two filtered
 * queries then differ by whole groups, each of at least k records or suppressed.
 */
export function planAggregate(
  config: Config,
  principal: Principal,
  object: CrmObject,
  crm: CrmConnector,
  query: AggregateQuery,
  rows: readonly RowCondition[],
): AggregatePlan {
  const meta = crm.describe(object);
  const view = aggregateView(config, principal, object, meta);
  const granted = aggregateFields(config, principal, object);
  if (view.shown.size === 0) {
    throw new AccessDenied(
      'SCOPE_MISSING',
      `aggregates of ${object} need an aggregate scope, such as read:${object}.aggregate`,
    );
  }
  const named = [
    ...(query.groupBy ? [query.groupBy] : []),
    ...query.metrics.flatMap((m) => (m.field ? [m.field] : [])),
  ];
  const outside = [...new Set(named.filter((field) => !view.shown.has(field)))];
  if (outside.length > 0) {
    throw new AccessDenied(
      'FIELD_NOT_ALLOWED',
      `fields outside the granted aggregate scopes: ${outside.join(', ')}`,
      {
        fields: outside,
      },
    );
  }
  const masked = [...new Set(named.filter((field) => !view.filterable.has(field)))];
  if (masked.length > 0) {
    throw new InputError(`masked fields cannot be grouped by or measured: ${masked.join(', ')}`, {
      fields: masked,
    });
  }
  const types = new Map(meta.fields.map((f) => [f.name, f.type]));
  const months = aggregateMonthFields(view, meta);
  if (query.bucket && (!query.groupBy || !months.has(query.groupBy))) {
    throw new InputError(`only a date is grouped by month: ${[...months].sort().join(', ') || 'none here'}`, {
      parameter: 'group_by',
    });
  }
  // An exact date nearly names one record: dates are grouped by month only.
  if (query.groupBy && !query.bucket && months.has(query.groupBy)) {
    throw new InputError(`group by ${query.groupBy}:month, not by the exact date`, { parameter: 'group_by' });
  }
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
  const dimensions = aggregateDimensions(view, meta);
  // By month, no filter at all: a range of dates inside the bucket would cut a month down to one record.
  const filterable = query.groupBy
    ? new Set([...dimensions].filter((field) => field === query.groupBy && !query.bucket))
    : dimensions;
  const filter = parseFilters(view, query.filter, filterable);
  return {
    object,
    groupBy: query.groupBy,
    ...(query.bucket && { bucket: query.bucket }),
    metrics: query.metrics,
    where,
    filter,
    filterFields: filter ? filterFields(filter) : [],
    scopes: scopesUsed(config, granted.scopes, named),
    ...(consentLinked(object) && { linkedConsent: consentCondition(config, principal) }),
  };
}

export interface AggregateAnswer {
  groups: Record<string, string | number | null>[];
  suppressed_groups: number;
}

type Run = (req: {
  groupBy?: string;
  bucket?: 'month';
  metrics: readonly Metric[];
  filter?: FilterExpr;
}) => Promise<{
  groups: AggregateGroup[];
  truncated: boolean;
}>;

/**
 * fetch + protect: runs the aggregate in the store and releases only what singles out no record: groups
 * of at least k (gateway.aggregate.minGroupSize) records, with further groups suppressed until the
 * suppressed ones hold k records together (else the total less the shown groups is the small group);
 * a filter without group_by only on dimensions whose every value holds k records (else the total less
 * a filtered total is a small group); and a min or max only when k records of the group hold it.
 */
export async function runAggregate(
  crm: CrmConnector,
  config: Config,
  plan: AggregatePlan,
): Promise<AggregateAnswer> {
  const { minGroupSize: k, maxGroups } = config.gateway.aggregate;
  const run: Run = async (req) => {
    const request = { ...req, where: plan.where, limit: maxGroups };
    // Notes about contacts without consent are left out one by one: the store cannot join to the contact.
    const result = plan.linkedConsent
      ? await aggregateLinked(crm, plan.object, request, plan.linkedConsent)
      : await crm.aggregate(plan.object, request);
    if (result.truncated) {
      throw new InputError(`more than ${maxGroups} groups; group by a field with fewer values`, {
        parameter: 'group_by',
      });
    }
    return result;
  };
  if (!plan.groupBy) await requireLargeValues(run, plan.filterFields, k);
  const result = await run({
    groupBy: plan.groupBy,
    bucket: plan.bucket,
    metrics: plan.metrics,
    filter: plan.filter,
  });
  const kept = releasedGroups(result.groups, k);
  const extremes = await extremesHeldByK(run, plan, kept, k);
  return {
    groups: kept.map((group, i) => groupAnswer(plan, group, extremes[i] ?? [])),
    suppressed_groups: result.groups.length - kept.length,
  };
}

/**
 * The groups that may be shown: each of at least k records, and, when some are suppressed, enough of
 * the smallest others suppressed too that the suppressed ones hold k records together (complementary
 * suppression: an unfiltered total less the shown groups must not be one small group).
 */
export function releasedGroups(groups: readonly AggregateGroup[], k: number): AggregateGroup[] {
  const kept = groups.filter((group) => group.count >= k);
  let hidden = groups.length === 1 ? 0 : groups.reduce((n, g) => n + (g.count < k ? g.count : 0), 0);
  if (hidden === 0 || hidden >= k) return kept;
  const dropped = new Set<AggregateGroup>();
  for (const group of [...kept].sort((a, b) => a.count - b.count)) {
    if (hidden >= k) break;
    dropped.add(group);
    hidden += group.count;
  }
  return kept.filter((group) => !dropped.has(group));
}

/** A filter without group_by only on dimensions each of whose values holds at least k records. */
async function requireLargeValues(run: Run, fields: readonly string[], k: number): Promise<void> {
  for (const field of fields) {
    const { groups } = await run({ groupBy: field, metrics: [{ fn: 'count' }] });
    if (groups.some((group) => group.count < k)) {
      throw new InputError(
        `a filter on ${field} could single out one of its values held by fewer than ${k} records; group by ${field} instead`,
        { parameter: 'filter', field },
      );
    }
  }
}

/** Groups whose extremes are checked in one query: each takes three expression nodes. */
const extremeChunk = 60;

/**
 * Per released group and metric, whether a min or max may be shown: only when at least k records of
 * the group hold that value. An extreme held by fewer is one record's value, and naming the group it
 * sits in (`group_by=stage`) is how a differencing attack rebuilds that record.
 */
async function extremesHeldByK(
  run: Run,
  plan: AggregatePlan,
  groups: readonly AggregateGroup[],
  k: number,
): Promise<boolean[][]> {
  const shown = groups.map(() => plan.metrics.map((metric) => metric.fn !== 'min' && metric.fn !== 'max'));
  for (const [m, metric] of plan.metrics.entries()) {
    if (metric.fn !== 'min' && metric.fn !== 'max') continue;
    const field = metric.field as string;
    const candidates = groups
      .map((group, i) => ({ group, i, value: group.values[m] }))
      .filter(
        ({ group, value }) => value !== null && value !== undefined && (!plan.groupBy || group.key !== null),
      );
    for (let c = 0; c < candidates.length; c += extremeChunk) {
      const chunk = candidates.slice(c, c + extremeChunk);
      const cells: FilterExpr[] = chunk.map(({ group, value }) => {
        const holds: FilterExpr = { kind: 'compare', field, op: 'eq', value: value as string | number };
        return plan.groupBy
          ? { kind: 'and', items: [...groupCondition(plan.groupBy, plan.bucket, group.key), holds] }
          : holds;
      });
      const cellFilter: FilterExpr =
        cells.length === 1 ? (cells[0] as FilterExpr) : { kind: 'or', items: cells };
      const filter: FilterExpr = plan.filter ? { kind: 'and', items: [plan.filter, cellFilter] } : cellFilter;
      const { groups: held } = await run({
        groupBy: plan.groupBy,
        bucket: plan.bucket,
        metrics: [{ fn: 'count' }],
        filter,
      });
      const holders = new Map(held.map((group) => [group.key, group.count]));
      for (const { group, i } of chunk) {
        (shown[i] as boolean[])[m] = (holders.get(group.key) ?? 0) >= k;
      }
    }
  }
  return shown;
}

/** The records of one group: its value, or for a month the dates from its first day to the next month's. */
export function groupCondition(
  field: string,
  bucket: 'month' | undefined,
  key: AggregateGroup['key'],
): FilterExpr[] {
  if (bucket !== 'month') return [{ kind: 'compare', field, op: 'eq', value: key as string | number }];
  const [year = 0, month = 0] = String(key).split('-').map(Number);
  const next = month === 12 ? `${year + 1}-01` : `${year}-${String(month + 1).padStart(2, '0')}`;
  return [
    { kind: 'compare', field, op: 'ge', value: `${String(key)}-01` },
    { kind: 'compare', field, op: 'lt', value: `${next}-01` },
  ];
}

/** The key a group answers under: the field, or `close_date:month` for a month. */
export const groupKey = (groupBy: string, bucket?: 'month') => (bucket ? `${groupBy}:${bucket}` : groupBy);

/** `{ stage: "Closed Won", count: 12, sum_amount: 340000 }` */
function groupAnswer(
  plan: AggregatePlan,
  group: AggregateGroup,
  shown: readonly boolean[],
): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  if (plan.groupBy) out[groupKey(plan.groupBy, plan.bucket)] = group.key;
  out.count = group.count;
  plan.metrics.forEach((metric, i) => {
    if (metric.fn !== 'count')
      out[`${metric.fn}_${metric.field}`] = shown[i] ? (group.values[i] ?? null) : null;
  });
  return out;
}
