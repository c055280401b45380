import { InputError } from '../../errors/index.js';
import type { NormalExpr } from '../expression.js';
import type { FilterOp } from '../types.js';
import type { NormalCondition, Scalar } from '../validate.js';

/**
 * Our row filter and filter expressions as HubSpot search `filterGroups`: an OR of groups, each an AND
 * of filters. The expression is put in negation normal form and expanded into that shape; HubSpot's
 * limits (5 groups, 6 filters in a group, 18 in all, 100 values in an IN) are checked here, and a
 * filter beyond them is refused (422) rather than sent half or answered from a wider search.
 */

export interface SearchFilter {
  propertyName: string;
  operator: HubSpotOperator;
  value?: string;
  values?: string[];
}
export interface FilterGroup {
  filters: SearchFilter[];
}
export type HubSpotOperator =
  'EQ' | 'NEQ' | 'LT' | 'LTE' | 'GT' | 'GTE' | 'IN' | 'NOT_IN' | 'HAS_PROPERTY' | 'NOT_HAS_PROPERTY';

export const searchLimits = Object.freeze({ groups: 5, filtersPerGroup: 6, filters: 18, inValues: 100 });

/** A comparison after negations were pushed down: `nin` is a negated `in`. */
type Literal =
  | { readonly field: string; readonly op: FilterOp; readonly value: Scalar }
  | { readonly field: string; readonly op: 'in' | 'nin'; readonly values: readonly Scalar[] };

/** How a field and its values are named in HubSpot (property name, value as HubSpot compares it). */
export interface Encoder {
  property(field: string): string;
  value(field: string, value: Scalar): string;
}

const negated: Readonly<Record<FilterOp, FilterOp>> = {
  eq: 'ne',
  ne: 'eq',
  gt: 'le',
  le: 'gt',
  ge: 'lt',
  lt: 'ge',
};
const operators: Readonly<Record<FilterOp, HubSpotOperator>> = {
  eq: 'EQ',
  ne: 'NEQ',
  gt: 'GT',
  ge: 'GTE',
  lt: 'LT',
  le: 'LTE',
};

/** Intermediate expansion bound: far above what fits HubSpot's limits, low enough to stay cheap. */
const maxConjunctions = 64;

/**
 * The filter groups for `where` AND `expr` (AND `hs_object_id > after`), or undefined when they can
 * match nothing, so the caller answers without a request. An empty array means "no filter".
 */
export function toFilterGroups(
  where: readonly NormalCondition[],
  expr: NormalExpr | undefined,
  encoder: Encoder,
  after?: string,
): FilterGroup[] | undefined {
  const base: Literal[] = where.map((c) =>
    c.op === 'eq'
      ? { field: c.field, op: 'eq', value: c.value }
      : { field: c.field, op: 'in', values: c.value },
  );
  const conjunctions = (expr ? disjunctiveForm(expr, false) : [[]]).map((terms) => [...base, ...terms]);
  const groups: FilterGroup[] = [];
  for (const terms of conjunctions) {
    const filters = groupFilters(terms, encoder);
    if (filters === undefined) continue;
    if (after !== undefined) filters.push({ propertyName: 'hs_object_id', operator: 'GT', value: after });
    groups.push({ filters });
  }
  if (groups.length === 0) return undefined;
  // One group without filters matches everything: the whole OR does.
  if (groups.some((g) => g.filters.length === 0)) return [];
  checkLimits(groups);
  return groups;
}

/** The expression (negated when `negate`) as an OR of ANDs of literals. */
function disjunctiveForm(expr: NormalExpr, negate: boolean): Literal[][] {
  switch (expr.kind) {
    case 'not':
      return disjunctiveForm(expr.item, !negate);
    case 'compare':
      return [[{ field: expr.field, op: negate ? negated[expr.op] : expr.op, value: expr.value }]];
    case 'in':
      return [[{ field: expr.field, op: negate ? 'nin' : 'in', values: expr.values }]];
    case 'and':
    case 'or': {
      // De Morgan: a negated AND is an OR of the negated items, and the other way round.
      const conjunctive = (expr.kind === 'and') !== negate;
      const parts = expr.items.map((item) => disjunctiveForm(item, negate));
      if (!conjunctive) return bounded(parts.flat());
      let product: Literal[][] = [[]];
      for (const part of parts) {
        product = bounded(product.flatMap((left) => part.map((right) => [...left, ...right])));
      }
      return product;
    }
  }
}

function bounded(conjunctions: Literal[][]): Literal[][] {
  if (conjunctions.length > maxConjunctions) throw tooComplex();
  return conjunctions;
}

/** The HubSpot filters of one AND group; undefined when the group can match nothing (an empty IN). */
function groupFilters(terms: readonly Literal[], encoder: Encoder): SearchFilter[] | undefined {
  const filters: SearchFilter[] = [];
  const present = new Set<string>();
  // As in SQL, a comparison with an empty field is false: HubSpot's NEQ and NOT_IN match records
  // without the property, so they are paired with HAS_PROPERTY.
  const requirePresent = (propertyName: string) => {
    if (present.has(propertyName)) return;
    present.add(propertyName);
    filters.push({ propertyName, operator: 'HAS_PROPERTY' });
  };
  for (const term of terms) {
    const propertyName = encoder.property(term.field);
    if ('values' in term) {
      if (term.values.length === 0) {
        if (term.op === 'in') return undefined;
        continue;
      }
      if (term.values.length > searchLimits.inValues) {
        throw new InputError(
          `HubSpot search takes at most ${searchLimits.inValues} values in one list; filter on ${term.field} with fewer`,
          { field: term.field },
        );
      }
      const values = [...new Set(term.values.map((v) => encoder.value(term.field, v)))];
      if (term.op === 'nin') requirePresent(propertyName);
      filters.push({ propertyName, operator: term.op === 'in' ? 'IN' : 'NOT_IN', values });
      continue;
    }
    if (term.op === 'ne') requirePresent(propertyName);
    filters.push({
      propertyName,
      operator: operators[term.op],
      value: encoder.value(term.field, term.value),
    });
  }
  return filters;
}

function checkLimits(groups: readonly FilterGroup[]): void {
  const total = groups.reduce((n, g) => n + g.filters.length, 0);
  if (
    groups.length > searchLimits.groups ||
    total > searchLimits.filters ||
    groups.some((g) => g.filters.length > searchLimits.filtersPerGroup)
  ) {
    throw tooComplex();
  }
}

function tooComplex(): InputError {
  return new InputError(
    `the filter is too complex for HubSpot search (at most ${searchLimits.groups} alternatives of ${searchLimits.filtersPerGroup} conditions, ${searchLimits.filters} in all, counting the row filter); simplify it`,
    { parameter: 'filter' },
  );
}
