import type { CrmConfig } from '../../config/index.js';
import { ConfigError, CrmUnsupported, InputError, PreconditionError } from '../../errors/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { checkMetric } from '../embedded.js';
import { normalizeExpression } from '../expression.js';
import { crmObjects, specOf, type ObjectSpec } from '../metadata.js';
import type {
  Condition,
  CrmConnector,
  CrmIdentity,
  CrmObject,
  CrmRecord,
  CrmSurvey,
  DataClass,
  FieldMeta,
  ObjectMeta,
} from '../types.js';
import {
  checkValues,
  maxLimit,
  normalizeWhere,
  parentFields,
  parentFrom,
  pick,
  updateOf,
  selectColumns,
  type NormalCondition,
} from '../validate.js';
import { SalesforceRefusal, type SalesforceClient, type SfRecord } from './client.js';
import { classifyVendorField, strongerClass, type VendorFieldMeta } from './classify.js';
import type { IdentityDirectory } from './identity.js';
import { defaultSalesforceMapping, type SalesforceObjectMapping } from './mapping.js';
import {
  soqlConditions,
  soqlExpression,
  soqlLiteral,
  soqlSelect,
  type SoqlField,
  type SoqlType,
} from './soql.js';

/**
 * The Salesforce connector: the connector contract over the REST API. Every read is one SOQL statement
 * with explicit fields, the caller's row filter inside it and every value through `soqlLiteral`; pages
 * are keyset by Id. Writes check the record under the row filter first, then write with
 * If-Unmodified-Since, so a change made in Salesforce in between is a 412, not a lost update. The
 * integration user's own sharing in Salesforce still applies on top.
 */

export interface SalesforceConnector extends CrmConnector {
  survey(): Promise<CrmSurvey[]>;
  identity(user: { email: string; federationId?: string }): CrmIdentity | undefined;
}

interface Mapped {
  readonly spec: ObjectSpec;
  readonly sobject: string;
  readonly fields: ReadonlyMap<string, SoqlField & { readonly write?: string }>;
  readonly meta: ObjectMeta;
}

const idShape = /^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$/;

/** Builds the connector after reading each mapped object's describe, which must hold every mapped field. */
export async function createSalesforceCrm(
  client: SalesforceClient,
  config: CrmConfig,
  directory?: IdentityDirectory,
): Promise<SalesforceConnector> {
  const mapped = new Map<CrmObject, Mapped>();
  const described = new Map<CrmObject, VendorFieldMeta[]>();
  for (const object of crmObjects) {
    const mapping = mergeMapping(defaultSalesforceMapping[object], config.mapping[object]);
    const describe = await client.describe(mapping.sobject);
    const vendorFields = ((describe.fields as SfRecord[]) ?? []).map(vendorFieldOf);
    described.set(object, vendorFields);
    mapped.set(object, mapObject(object, mapping, vendorFields, config.mapping[object]?.dataClasses ?? {}));
  }
  const of = (object: CrmObject): Mapped => {
    specOf(object);
    return mapped.get(object) as Mapped;
  };
  const fieldOf = (m: Mapped) => (name: string) => {
    const field = m.fields.get(name);
    if (!field) throw new TypeError(`unknown ${m.spec.object} field: ${JSON.stringify(name.slice(0, 64))}`);
    return field;
  };
  const paths = (m: Mapped, columns: readonly string[]) => columns.map((c) => fieldOf(m)(c).path);

  async function select(
    m: Mapped,
    columns: readonly string[],
    where: string[],
    limit?: number,
    orderBy?: string,
  ) {
    const soql = soqlSelect({
      fields: [...new Set(paths(m, columns))],
      from: m.sobject,
      where,
      orderBy,
      limit,
    });
    return (await client.query(soql, limit)).records.map((record) => recordOf(m, columns, record));
  }

  async function get(object: CrmObject, id: string, fields: readonly string[], where: readonly Condition[]) {
    const m = of(object);
    const columns = selectColumns(m.spec, fields);
    const conditions = normalizeWhere(m.spec, where);
    if (typeof id !== 'string') throw new TypeError('id must be a string');
    if (!conditions || !idShape.test(id)) return undefined;
    const clauses = [`Id = ${soqlLiteral(id, 'id')}`, ...soqlConditions(conditions, fieldOf(m))];
    const [record] = await select(m, columns, clauses, 1);
    return record;
  }

  /** The parent a child takes territory and owner from (`parentFrom`, shared with HubSpot). */
  function parentOf(
    m: Mapped,
    values: CrmRecord,
    conditions: readonly NormalCondition[],
  ): Promise<CrmRecord> {
    return parentFrom(m.spec, values, conditions, get);
  }

  /** The sObject body of Gatehouse values: mapped field names, owners as User ids. */
  async function bodyOf(m: Mapped, values: CrmRecord, mode: 'create' | 'update'): Promise<SfRecord> {
    const body: SfRecord = {};
    for (const [name, value] of Object.entries(values)) {
      const field = fieldOf(m)(name);
      // A create leaves empty fields out rather than naming them null.
      if (!field.write || (mode === 'create' && (value === null || value === ''))) continue;
      if (field.write === 'OwnerId') body.OwnerId = await userIdOf(String(value));
      else body[field.write] = value === '' ? null : value;
    }
    // A note hangs off an opportunity or, failing that, its account (Task.WhatId takes either).
    if (
      m.spec.object === 'note' &&
      body.WhatId === undefined &&
      typeof values.account_id === 'string' &&
      !values.opportunity_id
    ) {
      body.WhatId = values.account_id;
    }
    return body;
  }

  async function userIdOf(email: string): Promise<string> {
    const soql = soqlSelect({
      fields: ['Id'],
      from: 'User',
      where: [`Email = ${soqlLiteral(email, 'string', 'owner')}`, 'IsActive = true'],
      limit: 2,
    });
    const { records } = await client.query(soql);
    if (records.length !== 1)
      throw new InputError('owner does not name one active CRM user', { field: 'owner' });
    return String(records[0]?.Id);
  }

  const refused = (m: Mapped, error: unknown): unknown => {
    if (!(error instanceof SalesforceRefusal) || error.status >= 500) return error;
    const field = [...m.fields.entries()].find(([, f]) => f.write && error.fields.includes(f.write))?.[0];
    return new InputError(`the CRM refused the values (${error.errorCode})`, field ? { field } : {});
  };

  const connector: SalesforceConnector = {
    name: 'salesforce',

    describe(object) {
      return of(object).meta;
    },

    get,

    async query(object, req) {
      const m = of(object);
      const columns = selectColumns(m.spec, req.fields);
      const conditions = normalizeWhere(m.spec, req.where);
      const expression = req.filter === undefined ? undefined : normalizeExpression(m.spec, req.filter);
      const { limit } = req;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
        throw new TypeError(`limit must be an integer from 1 to ${maxLimit}`);
      }
      const after = req.cursor === undefined ? undefined : decodeCursor(object, req.cursor);
      if (!conditions) return { records: [] };
      const where = soqlConditions(conditions, fieldOf(m));
      // The client's expression is ANDed after the row filter, in its own parentheses.
      if (expression) where.push(soqlExpression(expression, fieldOf(m)));
      if (after !== undefined) where.push(`Id > ${soqlLiteral(after, 'id', 'cursor')}`);
      const records = await select(m, columns, where, limit + 1, 'Id ASC');
      if (records.length <= limit) return { records };
      const page = records.slice(0, limit);
      return { records: page, nextCursor: encodeCursor(object, String(page[limit - 1]?.id)) };
    },

    async count(object, where = [], expr?) {
      const m = of(object);
      const conditions = normalizeWhere(m.spec, where);
      const expression = expr === undefined ? undefined : normalizeExpression(m.spec, expr);
      if (!conditions) return 0;
      const clauses = soqlConditions(conditions, fieldOf(m));
      if (expression) clauses.push(soqlExpression(expression, fieldOf(m)));
      const { totalSize } = await client.query(
        soqlSelect({ fields: ['COUNT()'], from: m.sobject, where: clauses }),
      );
      return totalSize;
    },

    async create(object, input) {
      const m = of(object);
      const values = checkValues(m.spec, input, 'create');
      const derived = object === 'account' ? {} : await parentOf(m, values, []);
      try {
        const id = await client.create(m.sobject, await bodyOf(m, { ...values, ...derived }, 'create'));
        return { id, ...pick(values, Object.keys(input)), ...derived };
      } catch (error) {
        throw refused(m, error);
      }
    },

    async update(object, id, input, where) {
      const m = of(object);
      const values = checkValues(m.spec, input, 'update');
      const conditions = normalizeWhere(m.spec, where);
      const parents = parentFields.filter((f) => m.spec.fields.has(f));
      const existing = await get(object, id, ['territory', 'owner', 'updated_at', ...parents], where);
      if (!existing || !conditions) return undefined;
      if (Object.keys(values).length === 0) return { id };
      const { derived } = await updateOf(object, values, existing, conditions, () =>
        parentOf(m, { ...pick(existing, parents), ...values }, conditions),
      );
      let outcome: 'updated' | 'stale' | 'missing';
      try {
        // Salesforce's own concurrency check: refused (412) if the record changed after the version read.
        outcome = await client.update(
          m.sobject,
          id,
          await bodyOf(m, values, 'update'),
          new Date(String(existing.updated_at)).toUTCString(),
        );
      } catch (error) {
        throw refused(m, error);
      }
      if (outcome === 'missing') return undefined;
      if (outcome === 'stale') {
        throw new PreconditionError(
          'PRECONDITION_FAILED',
          'the record changed since you read it; read it again',
        );
      }
      return { id, ...pick(values, Object.keys(input)), ...derived };
    },

    async delete(object, id, where) {
      const m = of(object);
      if (!(await get(object, id, [], where))) return false;
      return client.delete(m.sobject, id);
    },

    async aggregate(object, req) {
      const m = of(object);
      const groupBy = req.groupBy === undefined ? undefined : fieldOf(m)(req.groupBy);
      const metrics = req.metrics.map((metric) => checkMetric(m.spec, metric));
      const conditions = normalizeWhere(m.spec, req.where);
      const expression = req.filter === undefined ? undefined : normalizeExpression(m.spec, req.filter);
      const { limit } = req;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
        throw new TypeError(`limit must be an integer from 1 to ${maxLimit}`);
      }
      if (req.bucket !== undefined) {
        throw new CrmUnsupported(
          'grouping by month is not supported on Salesforce; group by the field itself',
          {
            parameter: 'bucket',
          },
        );
      }
      if (!conditions) return { groups: [], truncated: false };
      const where = soqlConditions(conditions, fieldOf(m));
      if (expression) where.push(soqlExpression(expression, fieldOf(m)));
      const fields = [
        'COUNT(Id) n',
        ...metrics.map((metric, i) =>
          metric.fn === 'count'
            ? `COUNT(Id) m${i}`
            : `${metric.fn.toUpperCase()}(${fieldOf(m)(metric.field as string).path}) m${i}`,
        ),
        ...(groupBy ? [groupBy.path] : []),
      ];
      const soql = soqlSelect({
        fields,
        from: m.sobject,
        where,
        ...(groupBy ? { groupBy: groupBy.path, orderBy: `${groupBy.path} ASC` } : {}),
        limit: limit + 1,
      });
      const { records } = await client.query(soql);
      const key = groupBy?.path.split('.').pop() as string;
      const groups = records.slice(0, limit).map((row) => ({
        key: groupBy ? scalar(groupBy.type, row[key]) : null,
        count: Number(row.n),
        values: metrics.map((metric, i) => {
          const value = row[`m${i}`];
          if (value === null || value === undefined) return null;
          if (metric.numeric) return Number(value);
          const field = fieldOf(m)(metric.field as string);
          return scalar(field.type, value);
        }),
      }));
      return { groups, truncated: records.length > limit };
    },

    identity(user) {
      return directory?.lookup(user);
    },

    async survey() {
      return crmObjects.map((object) => {
        const m = of(object);
        const byPath = new Map([...m.fields.entries()].map(([name, f]) => [f.path.toLowerCase(), name]));
        return {
          object,
          vendorObject: m.sobject,
          fields: (described.get(object) ?? []).map((field) => {
            const mappedTo = byPath.get(field.name.toLowerCase());
            const suggested = classifyVendorField(field);
            const classification = [field.complianceGroup, field.securityClassification]
              .filter(Boolean)
              .join(' · ');
            return {
              name: field.name,
              label: field.label,
              type: field.type,
              encrypted: field.encrypted,
              ...(classification ? { classification } : {}),
              ...(mappedTo ? { mappedTo } : {}),
              ...(suggested ? { suggested } : {}),
            };
          }),
        };
      });
    },
  };
  return connector;
}

function mergeMapping(
  defaults: SalesforceObjectMapping,
  configured: CrmConfig['mapping'][CrmObject],
): SalesforceObjectMapping {
  if (!configured) return defaults;
  const fields = { ...defaults.fields };
  for (const [name, path] of Object.entries(configured.fields)) {
    fields[name] = { path, ...(path.includes('.') ? {} : { write: path }) };
  }
  return { sobject: configured.object ?? defaults.sobject, fields };
}

const soqlTypes: Readonly<Record<FieldMeta['type'], SoqlType>> = {
  id: 'id',
  string: 'string',
  number: 'number',
  date: 'date',
  datetime: 'datetime',
};

/** The mapping checked against describe: every mapped direct field must exist; data classes follow the metadata. */
function mapObject(
  object: CrmObject,
  mapping: SalesforceObjectMapping,
  vendorFields: readonly VendorFieldMeta[],
  classes: Readonly<Record<string, DataClass>>,
): Mapped {
  const spec = specOf(object);
  const byName = new Map(vendorFields.map((f) => [f.name.toLowerCase(), f]));
  const fields = new Map<string, SoqlField & { write?: string }>();
  const meta: FieldMeta[] = [];
  for (const field of spec.fields.values()) {
    const entry = mapping.fields[field.name];
    if (!entry)
      throw new ConfigError(`config: crm.mapping.${object} maps no Salesforce field onto ${field.name}`);
    const vendor = byName.get(entry.path.toLowerCase());
    if (!entry.path.includes('.') && !vendor) {
      throw new ConfigError(`config: crm.mapping.${object}: ${mapping.sobject} has no field ${entry.path}`);
    }
    fields.set(field.name, {
      path: entry.path,
      type: soqlTypes[field.type],
      ...(entry.write ? { write: entry.write } : {}),
    });
    const configured = classes[entry.path];
    const suggested = vendor ? classifyVendorField(vendor) : undefined;
    const dataClass = configured ?? (suggested ? strongerClass(field.dataClass, suggested) : field.dataClass);
    meta.push(
      Object.freeze({ name: field.name, type: field.type, dataClass, label: vendor?.label ?? field.label }),
    );
  }
  return {
    spec,
    sobject: mapping.sobject,
    fields,
    meta: Object.freeze({ object, plural: spec.plural, fields: Object.freeze(meta) }),
  };
}

function vendorFieldOf(field: SfRecord): VendorFieldMeta {
  return {
    name: String(field.name),
    label: String(field.label ?? field.name),
    type: String(field.type),
    encrypted: field.encrypted === true,
    ...(typeof field.complianceGroup === 'string' ? { complianceGroup: field.complianceGroup } : {}),
    ...(typeof field.securityClassification === 'string'
      ? { securityClassification: field.securityClassification }
      : {}),
  };
}

/** A record in Gatehouse's shape: the asked fields by their Gatehouse names, date-times as ISO 8601 UTC. */
function recordOf(m: Mapped, columns: readonly string[], record: SfRecord): CrmRecord {
  const out: CrmRecord = {};
  for (const name of columns) {
    const field = m.fields.get(name) as SoqlField;
    let value = scalar(field.type, pathValue(record, field.path));
    // Task.WhatId holds an opportunity or an account; only an opportunity is the note's opportunity_id.
    if (
      m.spec.object === 'note' &&
      name === 'opportunity_id' &&
      typeof value === 'string' &&
      !value.startsWith('006')
    ) {
      value = null;
    }
    out[name] = value;
  }
  return out;
}

function pathValue(record: SfRecord, path: string): unknown {
  let node: unknown = record;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null) return null;
    node = (node as SfRecord)[part];
  }
  return node;
}

function scalar(type: SoqlType, value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (type === 'datetime') return new Date(String(value).replace(/\+0000$/, 'Z')).toISOString();
  if (type === 'number') return Number(value);
  return typeof value === 'number' ? value : String(value);
}
