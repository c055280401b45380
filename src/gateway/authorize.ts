import type { Config } from '../config/index.js';
import type { CrmConnector, CrmObject, CrmRecord } from '../crm/index.js';
import { AccessDenied, InputError, NotFound } from '../errors/index.js';
import type { RecordRef, RowCondition } from '../policy/index.js';
import type { AggregateQuery } from './aggregate.js';
import { filterFields, parseFilterParams } from './filter.js';
import { recordAttributeFields, recordRefOf, type PolicyAsk, type RuntimePolicy } from './policy.js';

/**
 * The authorize stage: what the gateway asks Cedar for a request — who (the user through the app, with
 * role, territory and scopes), which action on which object, the record's attributes when there is
 * one record, and the context (fields and their classes, record count, network, time) — and the
 * minimal lookups a record-level decision needs: territory, owner and account, never contents.
 */

/** A list asking for more than `gateway.exportAbove` records is an export, with the export rules. */
export function listAction(config: Config, limit: number): 'read' | 'export' {
  return limit > config.gateway.exportAbove ? 'export' : 'read';
}

/** The fields a client's filters compare (a filter on a field reads it, one guess at a time). */
export function filterFieldNames(filters: readonly string[]): string[] {
  const expr = parseFilterParams(filters);
  return expr ? filterFields(expr) : [];
}

/** The fields an aggregate groups by, measures or filters on. */
export function aggregateQueryFields(query: AggregateQuery): string[] {
  return [
    ...new Set([
      ...(query.groupBy ? [query.groupBy] : []),
      ...query.metrics.flatMap((metric) => (metric.field ? [metric.field] : [])),
      ...filterFieldNames(query.filter),
    ]),
  ];
}

/**
 * authorize one existing record: its attributes, read under the caller's read row filter `visible`
 * (404 when it is missing or hidden: a hidden record is never revealed), then Cedar with them for `ask`
 * (403 naming the policy when the caller may see the record but not do this to it).
 */
export async function authorizeExisting(
  crm: CrmConnector,
  policy: RuntimePolicy,
  ask: PolicyAsk,
  id: string,
  visible: readonly RowCondition[],
): Promise<void> {
  const record = await crm.get(ask.object, id, recordAttributeFields(ask.object), visible);
  if (!record) throw new NotFound();
  policy.record(ask, recordRefOf(ask.object, id, record));
}

/** The records a new record hangs off, most specific first: its attributes come from there. */
const parentRefs: Readonly<Record<CrmObject, readonly (readonly [string, CrmObject])[]>> = {
  account: [],
  contact: [['account_id', 'account']],
  opportunity: [['account_id', 'account']],
  note: [
    ['contact_id', 'contact'],
    ['opportunity_id', 'opportunity'],
    ['account_id', 'account'],
  ],
};

/**
 * authorize a create, as any other write: the new record takes its territory, owner and account from the
 * record it hangs off (a note from its contact, opportunity or account), which must be visible to the
 * caller (else 422, as for any reference the caller cannot see); a record of an object without parents
 * (an account) has the attributes it is sent with. Cedar then decides on the new record with those
 * attributes, and every condition of the write's row filter `where` (`eq` and `in` alike: territories,
 * owners, a capability's accounts, consent) must hold for it, else 403: a create lands only where the
 * caller could later read and change it.
 */
export async function authorizeCreate(
  crm: CrmConnector,
  policy: RuntimePolicy,
  ask: PolicyAsk,
  values: CrmRecord,
  where: readonly RowCondition[],
): Promise<void> {
  const ref = await newRecordRef(crm, policy, ask, values);
  policy.record(ask, ref);
  const attributes: CrmRecord = {
    ...values,
    territory: ref.territory,
    owner: ref.owner,
    ...(ask.object !== 'account' && { account_id: ref.account }),
  };
  const unmet = [...new Set(where.filter((c) => !conditionHolds(c, attributes)).map((c) => c.field))];
  if (unmet.length > 0) {
    throw new AccessDenied(
      'POLICY_DENIED',
      `the new record would lie outside the records you may write (${unmet.join(', ')})`,
      { rule: 'row-filter', fields: unmet },
    );
  }
}

/** Whether a row condition holds for a record's values; a field the record has no value for fails it. */
export function conditionHolds(condition: RowCondition, record: CrmRecord): boolean {
  const value = record[condition.field];
  if (value === null || value === undefined) return false;
  const accepted = Array.isArray(condition.value) ? condition.value : [condition.value];
  return accepted.some((candidate) => String(candidate) === String(value));
}

/** The policy view of a record about to be created: its parent's attributes, or its own values. */
async function newRecordRef(
  crm: CrmConnector,
  policy: RuntimePolicy,
  ask: PolicyAsk,
  values: CrmRecord,
): Promise<RecordRef> {
  const refs = parentRefs[ask.object];
  const parent = refs.find(([field]) => typeof values[field] === 'string');
  if (!parent) {
    if (refs.length > 0) {
      const fields = refs.map(([field]) => field);
      throw new InputError(`a new ${ask.object} hangs off a record: send one of ${fields.join(', ')}`, {
        fields,
      });
    }
    return recordRefOf(ask.object, '(new)', values);
  }
  const [field, object] = parent;
  const id = values[field] as string;
  const visible = policy.rows({ ...ask, action: 'read', object, fields: [], recordCount: 1 });
  const record = await crm.get(object, id, recordAttributeFields(object), visible);
  if (!record) throw new InputError(`${field} does not name a record you can see`, { field });
  return { ...recordRefOf(object, id, record), id: '(new)' };
}
