import { AccessDenied, InputError } from '../errors/index.js';
import { isIdOf } from './ids.js';
import { specOf, territories, type FieldSpec, type ObjectSpec } from './metadata.js';
import type { Condition, CrmObject, CrmRecord } from './types.js';

/**
 * Checks everything that reaches the query builder. Field names come from the caller (the gateway has
 * already matched them to scopes), so an unknown one is a TypeError; values may come from clients, so
 * a bad value is an InputError that names the field and never echoes the value.
 */

export type Scalar = string | number;
export type NormalCondition =
  | { readonly field: string; readonly op: 'eq'; readonly value: Scalar }
  | { readonly field: string; readonly op: 'in'; readonly value: readonly Scalar[] };

/** Longest `in` list accepted; keeps every query far below the backends' bound-parameter limits. */
export const maxInValues = 1000;
export const maxLimit = 10_000;

export function fieldSpec(spec: ObjectSpec, name: unknown): FieldSpec {
  const field = typeof name === 'string' && spec.fields.has(name) ? spec.fields.get(name) : undefined;
  if (!field)
    throw new TypeError(`unknown ${spec.object} field: ${JSON.stringify(String(name).slice(0, 64))}`);
  return field;
}

/** `id` followed by the requested fields, each once, all known. */
export function selectColumns(spec: ObjectSpec, fields: readonly string[]): string[] {
  if (!Array.isArray(fields)) throw new TypeError('fields must be an array of field names');
  const columns = new Set<string>(['id']);
  for (const name of fields) columns.add(fieldSpec(spec, name).name);
  return [...columns];
}

/**
 * The conditions in a form the query builder can take, or `undefined` when they can match nothing
 * (an empty `in` list), so the caller answers without a query.
 */
export function normalizeWhere(spec: ObjectSpec, where: readonly Condition[]): NormalCondition[] | undefined {
  if (!Array.isArray(where)) throw new TypeError('where must be an array of conditions');
  const out: NormalCondition[] = [];
  for (const condition of where) {
    const field = fieldSpec(spec, condition?.field);
    if (condition.op === 'eq') {
      if (Array.isArray(condition.value))
        throw new TypeError(`condition on ${field.name}: eq takes one value`);
      out.push({ field: field.name, op: 'eq', value: conditionValue(field, condition.value) });
    } else if (condition.op === 'in') {
      const values: unknown = condition.value;
      if (!Array.isArray(values)) throw new TypeError(`condition on ${field.name}: in takes an array`);
      if (values.length > maxInValues) {
        throw new TypeError(`condition on ${field.name}: at most ${maxInValues} values in one in-list`);
      }
      if (values.length === 0) return undefined;
      out.push({ field: field.name, op: 'in', value: values.map((v: unknown) => conditionValue(field, v)) });
    } else {
      throw new TypeError(`condition on ${field.name}: unknown operator`);
    }
  }
  return out;
}

export function conditionValue(field: FieldSpec, value: unknown): Scalar {
  if (field.type === 'number') {
    // Filter values often arrive as query-string text: accept a decimal numeral, nothing looser.
    const n = typeof value === 'string' && /^-?\d{1,16}(\.\d{1,6})?$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw new InputError(`filter on ${field.name} needs a number`, { field: field.name });
    }
    return n;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string')
    throw new TypeError(`condition on ${field.name}: value must be a string or number`);
  return value;
}

/** Whether a stored value satisfies a condition, for checking a write against the caller's row filter. */
export function satisfies(condition: NormalCondition, value: string | number | null | undefined): boolean {
  if (value === null || value === undefined) return false;
  return condition.op === 'eq' ? condition.value === value : condition.value.includes(value);
}

/** The fields of `record` named in `keys` that it holds. */
export function pick(record: CrmRecord, keys: readonly string[]): CrmRecord {
  const out: CrmRecord = {};
  for (const key of keys) if (record[key] !== undefined) out[key] = record[key];
  return out;
}

/** The fields through which a child record hangs under its account. */
export const parentFields = ['account_id', 'contact_id', 'opportunity_id'] as const;

/** Reads one record under conditions, as a connector does: undefined when missing or not visible. */
export type ReadUnder = (
  object: CrmObject,
  id: string,
  fields: readonly string[],
  where: readonly NormalCondition[],
) => Promise<CrmRecord | undefined>;

/**
 * The parent a child record takes territory and owner from (its account, reached through its contact or
 * opportunity for a note), decided the same way by the vendor connectors. The parent must be visible
 * under the caller's territory/owner conditions and any territory/owner given; otherwise it is
 * reported exactly like a missing one.
 */
export async function parentFrom(
  spec: ObjectSpec,
  values: CrmRecord,
  conditions: readonly NormalCondition[],
  read: ReadUnder,
): Promise<CrmRecord> {
  const visible: NormalCondition[] = conditions.filter((c) => c.field === 'territory' || c.field === 'owner');
  for (const field of ['territory', 'owner'] as const) {
    const value = values[field];
    if (typeof value === 'string') visible.push({ field, op: 'eq', value });
  }
  const missing = (field: string) => new InputError(`${field} does not name a record you can see`, { field });
  let accountId = typeof values.account_id === 'string' ? values.account_id : undefined;
  for (const [field, parent] of [
    ['contact_id', 'contact'],
    ['opportunity_id', 'opportunity'],
  ] as const) {
    const ref = values[field];
    if (!spec.fields.has(field) || typeof ref !== 'string') continue;
    const found = await read(parent, ref, ['account_id'], visible);
    if (!found) throw missing(field);
    if (accountId !== undefined && found.account_id !== accountId) {
      throw new InputError(`${field} belongs to another account than account_id`, { field });
    }
    accountId = String(found.account_id);
  }
  if (accountId === undefined) {
    throw new InputError(
      `a ${spec.object} needs account_id${spec.object === 'note' ? ', contact_id or opportunity_id' : ''}`,
      { field: 'account_id' },
    );
  }
  const account = await read('account', accountId, ['territory', 'owner'], visible);
  if (!account) throw missing('account_id');
  return { account_id: accountId, territory: account.territory ?? null, owner: account.owner ?? null };
}

/**
 * What an update writes, decided the same way by every connector: the checked `values`, plus the
 * territory and owner a child takes from its new parent when it is moved (`newParent` reads that
 * parent under the caller's row filter). A child's territory or owner cannot be set directly, and no
 * update may move a record out of the caller's row filter (or into another territory).
 */
export async function updateOf(
  object: CrmObject,
  values: CrmRecord,
  existing: CrmRecord,
  conditions: readonly NormalCondition[],
  newParent: () => Promise<CrmRecord>,
): Promise<{ next: CrmRecord; derived: CrmRecord }> {
  let derived: CrmRecord = {};
  if (object !== 'account') {
    if (parentFields.some((field) => values[field] !== undefined)) {
      derived = await newParent();
    } else {
      for (const field of ['territory', 'owner']) {
        if (values[field] !== undefined && values[field] !== existing[field]) {
          throw new InputError(`the ${field} of a ${object} follows its account`, { field });
        }
      }
    }
  }
  const next = { ...values, ...derived };
  for (const condition of conditions) {
    if (next[condition.field] !== undefined && !satisfies(condition, next[condition.field])) {
      throw new AccessDenied('POLICY_DENIED', 'the change would move the record outside your row filter', {
        rule: 'row-filter',
      });
    }
  }
  return { next, derived };
}

/**
 * The values of a create or update, checked field by field and normalised to what the store keeps.
 * System fields (id, created_at, updated_at) are never writable: asking to write one is a caller's
 * mistake, as is an unknown field (mass assignment stops here at the latest).
 */
export function checkValues(spec: ObjectSpec, values: CrmRecord, mode: 'create' | 'update'): CrmRecord {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new TypeError('values must be an object of field values');
  }
  const out: CrmRecord = {};
  for (const [name, raw] of Object.entries(values)) {
    const field = fieldSpec(spec, name);
    if (field.write === 'system')
      throw new TypeError(`${spec.object} field ${name} is set by the CRM, not the caller`);
    out[name] = checkValue(field, raw);
  }
  if (mode === 'create') {
    for (const field of spec.fields.values()) {
      if (out[field.name] !== undefined) continue;
      if (field.write === 'required') {
        throw new InputError(`${spec.object} needs ${field.name}`, { field: field.name });
      }
      if (field.write === 'optional') out[field.name] = emptyValue(field);
    }
  }
  return out;
}

function emptyValue(field: FieldSpec): string | number | null {
  if (field.references) return null;
  return field.type === 'number' ? 0 : '';
}

function checkValue(field: FieldSpec, value: unknown): string | number | null {
  const bad = (what: string) => new InputError(`${field.name} ${what}`, { field: field.name });
  const required = field.write === 'required' || field.write === 'derived';
  if (value === null || value === undefined) {
    if (required) throw bad('is required');
    return emptyValue(field);
  }
  switch (field.type) {
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw bad('must be a number');
      if (value < 0 || value > 1e15) throw bad('is out of range');
      return value;
    case 'date':
      if (typeof value !== 'string' || !isIsoDate(value)) throw bad('must be a date as YYYY-MM-DD');
      return value;
    case 'id': {
      const target = field.references ? specOf(field.references) : undefined;
      if (typeof value !== 'string' || !target || !isIdOf(target.prefix, value)) {
        throw bad(
          `must be the id of ${target ? `a${target.object === 'account' ? 'n' : ''} ${target.object}` : 'a record'}`,
        );
      }
      return value;
    }
    default:
      break;
  }
  if (typeof value !== 'string') throw bad('must be a string');
  if (value.length > (field.maxLength ?? 255))
    throw bad(`is longer than ${field.maxLength ?? 255} characters`);
  // Control characters other than tab and newlines have no place in CRM text and upset downstream tools.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(value)) throw bad('contains control characters');
  if (required && value.trim() === '') throw bad('must not be empty');
  if (field.name === 'territory' && !(territories as readonly string[]).includes(value)) {
    throw bad(`must be one of ${territories.join(', ')}`);
  }
  if (
    (field.name === 'owner' || field.name === 'email') &&
    value !== '' &&
    !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)
  ) {
    throw bad('must be an email address');
  }
  return value;
}

function isIsoDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return false;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}
