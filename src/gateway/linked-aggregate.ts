import type { AggregateGroup, AggregateRequest, CrmConnector, CrmObject, CrmRecord } from '../crm/index.js';
import { InputError } from '../errors/index.js';
import type { RowCondition } from '../policy/index.js';
import { consentingContacts, linkingField } from './consent.js';

/** Records one aggregate may scan when consent must be checked record by record. */
export const maxLinkedScan = 100_000;
const pageSize = 1000;

type Value = string | number;

interface Running {
  count: number;
  /** Per metric: count of values, their sum, min and max. */
  metrics: { n: number; sum: number; min: Value | null; max: Value | null }[];
}

/**
 * An aggregate over records that follow a contact's consent (notes), computed here because a
 * connector cannot join to the contact: the policy-filtered records are paged through with only the
 * fields the aggregate needs, those linked to a contact without consent are left out, and the rest are
 * counted as the connector would (groups in ascending order of their value, nulls first; a metric over
 * no values is null). More than `maxLinkedScan` records is refused: filter further.
 */
export async function aggregateLinked(
  crm: CrmConnector,
  object: CrmObject,
  req: AggregateRequest,
  consent: RowCondition,
): Promise<{ groups: AggregateGroup[]; truncated: boolean }> {
  const types = new Map(crm.describe(object).fields.map((f) => [f.name, f.type]));
  const numeric = req.metrics.map(
    (m) => m.fn === 'avg' || (m.field !== undefined && types.get(m.field) === 'number'),
  );
  const fields = [
    ...new Set([
      linkingField,
      ...(req.groupBy ? [req.groupBy] : []),
      ...req.metrics.flatMap((m) => (m.field ? [m.field] : [])),
    ]),
  ];
  const groups = new Map<Value | null, Running>();
  let scanned = 0;
  let cursor: string | undefined;
  do {
    const page = await crm.query(object, {
      fields,
      where: req.where,
      filter: req.filter,
      limit: pageSize,
      cursor,
    });
    scanned += page.records.length;
    if (scanned > maxLinkedScan) {
      throw new InputError(
        `an aggregate of ${object} checks consent record by record and may cover at most ${maxLinkedScan} records; add a filter`,
        { parameter: 'filter' },
      );
    }
    const linked = [
      ...new Set(page.records.flatMap((r) => (r[linkingField] == null ? [] : [String(r[linkingField])]))),
    ];
    const consenting = await consentingContacts(crm, consent, linked);
    for (const record of page.records) {
      const contact = record[linkingField];
      if (contact != null && !consenting.has(String(contact))) continue;
      add(groups, record, req);
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);

  const ordered = [...groups.entries()].sort(([a], [b]) => compare(a, b));
  return {
    groups: ordered.slice(0, req.limit).map(([key, running]) => ({
      key,
      count: running.count,
      values: req.metrics.map((metric, i) => valueOf(metric.fn, running, i, numeric[i] ?? false)),
    })),
    truncated: ordered.length > req.limit,
  };
}

function add(groups: Map<Value | null, Running>, record: CrmRecord, req: AggregateRequest): void {
  const value = req.groupBy ? (record[req.groupBy] ?? null) : null;
  const key = req.bucket === 'month' && value !== null ? String(value).slice(0, 7) : value;
  let running = groups.get(key);
  if (!running) {
    running = { count: 0, metrics: req.metrics.map(() => ({ n: 0, sum: 0, min: null, max: null })) };
    groups.set(key, running);
  }
  running.count += 1;
  req.metrics.forEach((metric, i) => {
    const value = metric.field === undefined ? null : (record[metric.field] ?? null);
    const m = running.metrics[i];
    if (value === null || m === undefined) return;
    m.n += 1;
    if (typeof value === 'number') m.sum += value;
    if (m.min === null || compare(value, m.min) < 0) m.min = value;
    if (m.max === null || compare(value, m.max) > 0) m.max = value;
  });
}

function valueOf(fn: string, running: Running, i: number, numeric: boolean): Value | null {
  if (fn === 'count') return running.count;
  const m = running.metrics[i];
  if (!m || m.n === 0) return null;
  const value = fn === 'sum' ? m.sum : fn === 'avg' ? m.sum / m.n : fn === 'min' ? m.min : m.max;
  if (value === null) return null;
  return numeric ? Number(value) : String(value);
}

/** Nulls first, numbers by value, text by code unit (dates are ISO text, so by time). */
function compare(a: Value | null, b: Value | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : 1;
}
