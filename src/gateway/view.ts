import type { Config } from '../config/index.js';
import type { CrmObject, FilterExpr, ObjectMeta } from '../crm/index.js';
import { InputError } from '../errors/index.js';
import { maskFor, type Principal } from '../policy/index.js';
import { consentObject, consentWithheldFields } from './consent.js';
import { freeTextFields, outgoingRules } from './dlp.js';
import { checkFilterFields, filterFields } from './filter.js';
import { aggregateFields, recordFields } from './scopes.js';

/**
 * The caller's view (DESIGN.md "The caller's view"): for one request, the fields the caller may read
 * and how each is shown, and from that which fields a filter may compare, and how. The filter check,
 * cursors, aggregates, writes and the protect stage all consult this one value, so they cannot disagree
 * about what a caller may learn.
 */

/** How a readable field leaves the gateway. */
export type Shown = 'whole' | 'masked' | 'redacted';

export interface CallerView {
  readonly object: CrmObject;
  /** Every readable field with how it is shown. */
  readonly shown: ReadonlyMap<string, Shown>;
  /** Fields a filter may compare with eq, ne or in (and an aggregate group by): those shown whole. */
  readonly filterable: ReadonlySet<string>;
  /** Fields a filter may also compare by order (gt, ge, lt, le): filterable numbers and dates. */
  readonly orderable: ReadonlySet<string>;
  /**
   * Fields nulled on a record whose data subject did not consent (consent mode `mask`): a filter on
   * one of them holds only for consenting records, as it would on the nulled value.
   */
  readonly withheld: ReadonlySet<string>;
}

const orderableTypes: ReadonlySet<string> = new Set(['number', 'date', 'datetime']);

/**
 * The view of a record-level reader: `id`, which every record carries, and the fields its read scopes
 * open, masked as its role says, free text redacted when the outgoing DLP rules hold any kind for it (a
 * pattern in the text may be cut out).
 */
export function readerView(
  config: Config,
  principal: Principal,
  object: CrmObject,
  meta: ObjectMeta,
): CallerView {
  const readable = new Set(['id', ...recordFields(config, principal, object, 'read').fields]);
  return viewOf(config, principal, meta, readable);
}

/**
 * The view of an aggregate reader: the fields its aggregate scopes open. Filters there are narrower still
 * (aggregateFilterable): only the dimensions, never a measure.
 */
export function aggregateView(
  config: Config,
  principal: Principal,
  object: CrmObject,
  meta: ObjectMeta,
): CallerView {
  return viewOf(config, principal, meta, aggregateFields(config, principal, object).fields);
}

function viewOf(
  config: Config,
  principal: Principal,
  meta: ObjectMeta,
  readable: ReadonlySet<string>,
): CallerView {
  const { object } = meta;
  const role = config.roles[principal.role];
  const freeText = new Set(freeTextFields(config, object));
  const redacting = freeText.size > 0 && outgoingRules(config, principal).some((r) => r.kinds.length > 0);
  const shown = new Map<string, Shown>();
  for (const field of readable) {
    if (maskFor(role, object, field) !== 'none') shown.set(field, 'masked');
    else if (redacting && freeText.has(field)) shown.set(field, 'redacted');
    else shown.set(field, 'whole');
  }
  const filterable = new Set([...shown].filter(([, how]) => how === 'whole').map(([field]) => field));
  const types = new Map(meta.fields.map((field) => [field.name, field.type]));
  const orderable = new Set([...filterable].filter((field) => orderableTypes.has(types.get(field) ?? '')));
  const withheld =
    config.gateway.consent.mode === 'mask' ? consentWithheldFields(object, readable) : new Set<string>();
  return { object, shown, filterable, orderable, withheld };
}

/**
 * The fields an aggregate may filter on and group by: its dimensions — fields shown whole that are
 * neither numbers nor dates. A filter on a measure (`amount eq 41250`) or a fine range of dates would
 * cut a group down to one record; a dimension only ever selects whole categories.
 */
export function aggregateDimensions(view: CallerView, meta: ObjectMeta): Set<string> {
  const types = new Map(meta.fields.map((field) => [field.name, field.type]));
  return new Set([...view.filterable].filter((field) => !orderableTypes.has(types.get(field) ?? '')));
}

/**
 * The fields an aggregate may group by month (`group_by=close_date:month`): dates shown whole. A month
 * is a coarse dimension, as a stage is; the exact date is not (it nearly names one record).
 */
export function aggregateMonthFields(view: CallerView, meta: ObjectMeta): Set<string> {
  const dates = new Set(
    meta.fields.filter((f) => f.type === 'date' || f.type === 'datetime').map((f) => f.name),
  );
  return new Set([...view.filterable].filter((field) => dates.has(field)));
}

/**
 * Refuses a filter the view does not allow (422 naming the field, never a value): a field not shown
 * whole (masked, redacted, unreadable), or an order comparison on a field that is not a number or a date
 * (ranges over text recover a hidden value one bisection at a time).
 */
export function checkFilter(
  view: CallerView,
  expr: FilterExpr,
  filterable: ReadonlySet<string> = view.filterable,
): void {
  for (const field of filterFields(expr)) {
    const how = view.shown.get(field);
    if (filterable.has(field) || how === undefined) continue;
    const name = field.slice(0, 64);
    throw new InputError(
      how === 'whole'
        ? `cannot filter on ${name} here: filter on ${[...filterable].sort().join(', ') || 'no field'}`
        : `cannot filter on ${name}: you are shown it ${how}, and a filter on it would reveal what is hidden`,
      { parameter: 'filter', field: name },
    );
  }
  // What is left outside is not readable at all.
  checkFilterFields(expr, filterable);
  const walk = (node: FilterExpr): void => {
    switch (node.kind) {
      case 'and':
      case 'or':
        node.items.forEach(walk);
        return;
      case 'not':
        walk(node.item);
        return;
      case 'in':
        return;
      case 'compare':
        if (node.op === 'eq' || node.op === 'ne') return;
        if (filterable.has(node.field) && view.orderable.has(node.field)) return;
        throw new InputError(
          `cannot compare ${node.field} with ${node.op}: only numbers and dates are compared by order; use eq, ne or in`,
          { parameter: 'filter', field: node.field },
        );
    }
  };
  walk(expr);
}

/** Whether a filter names a field that a record without consent shows nulled. */
export function filterTouchesWithheld(view: CallerView, fields: readonly string[]): boolean {
  return fields.some((field) => view.withheld.has(field));
}

/** Whether the view's object carries consent in its own rows (contacts), so the store can apply it. */
export function consentInRows(view: CallerView): boolean {
  return view.object === consentObject;
}
