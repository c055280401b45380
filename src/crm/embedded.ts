import {
  sql,
  type Expression,
  type ExpressionBuilder,
  type Kysely,
  type SqlBool,
  type Transaction,
} from 'kysely';
import { InputError } from '../errors/index.js';
import { CompiledShapes, storeKindOf, type Db } from '../store/index.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { compileExpression, normalizeExpression } from './expression.js';
import type { FieldKeys } from './field-keys.js';
import { fieldProtection, type FieldProtection } from './field-protection.js';
import { randomId } from './ids.js';
import { BatchedReads } from './read-batch.js';
import { specOf, type CrmTable, type ObjectSpec } from './metadata.js';
import type {
  AggregateRequest,
  Condition,
  CrmConnector,
  CrmObject,
  FilterExpr,
  Metric,
  QueryRequest,
} from './types.js';
import {
  checkValues,
  fieldSpec,
  maxLimit,
  normalizeWhere,
  parentFields,
  pick,
  selectColumns,
  updateOf,
  type NormalCondition,
} from './validate.js';

/**
 * The embedded CRM: the connector interface over the crm_* tables of the store. Only the Kysely query
 * builder, only validated column names, and the row filter always inside the query, so the same code
 * runs on PostgreSQL and a hidden row never reaches this process. With field keys, the encrypted fields
 * are sealed on every write and opened on every read here, so the store never holds their plain value;
 * without them (a vendor's fake, whose tables stand for the vendor's own storage) they stay plain.
 */

type Row = Record<string, string | number | null>;
/** The crm_* tables seen with dynamic columns: every column name was checked against metadata first. */
type CrmDb = Record<CrmTable, Row>;
type Filter = (eb: ExpressionBuilder<CrmDb, CrmTable>) => Expression<SqlBool>;

/** The fields a child record takes from its account; a row filter on them is a filter on the account too. */
const inheritedFields = ['territory', 'owner'] as const;

export function createEmbeddedCrm(store: Db, keys?: FieldKeys): CrmConnector {
  const db = store as unknown as Kysely<CrmDb>;
  const fields: FieldProtection | undefined = keys ? fieldProtection(keys) : undefined;
  const conditionsOf = async (spec: ObjectSpec, where: readonly Condition[]) => {
    const conditions = normalizeWhere(spec, where);
    return conditions && fields ? fields.conditions(spec, conditions) : conditions;
  };
  const expressionOf = async (spec: ObjectSpec, expr: FilterExpr | undefined) => {
    const expression = expr === undefined ? undefined : normalizeExpression(spec, expr);
    return expression && fields ? fields.expression(spec, expression) : expression;
  };
  const opened = async (spec: ObjectSpec, rows: Row[]) => (fields ? fields.open(spec, rows) : rows);
  // Resolved before a transaction: the keys are read outside it (SQLite has one connection).
  const sealerOf = async (spec: ObjectSpec) =>
    fields ? fields.sealer(spec) : (_id: string, values: Row) => values;
  // Every gateway read of one record is this query; its shapes are few (object, fields, row filter).
  const reads = new CompiledShapes();
  // On PostgreSQL each read is a round trip: the reads of one turn share one (SQLite reads in-process).
  const batched = storeKindOf(db) === 'postgres' ? new BatchedReads() : undefined;

  return {
    name: 'embedded',

    describe(object) {
      return specOf(object).meta;
    },

    async get(object, id, requested, where) {
      const spec = specOf(object);
      const columns = selectColumns(spec, requested);
      const conditions = await conditionsOf(spec, where);
      if (!conditions || !plausibleId(id)) return undefined;
      const shape = readShape(spec.table, columns, conditions);
      const values = valuesOf(conditions);
      const row = batched
        ? await batched.read(`${shape}\n${JSON.stringify(values)}`, id, async (ids) => {
            const query = reads.compile(db, `${shape}|any`, [ids, ...values], () =>
              db
                .selectFrom(spec.table)
                .select(columns)
                .where('id', '=', sql<string>`any(${ids}::text[])`)
                .where(filter(conditions)),
            );
            return (await db.executeQuery(query)).rows;
          })
        : (
            await db.executeQuery(
              reads.compile(db, shape, [id, ...values], () =>
                db.selectFrom(spec.table).select(columns).where('id', '=', id).where(filter(conditions)),
              ),
            )
          ).rows[0];
      return row ? (await opened(spec, [{ ...row }]))[0] : undefined;
    },

    async query(object, req: QueryRequest) {
      const spec = specOf(object);
      const columns = selectColumns(spec, req.fields);
      const conditions = await conditionsOf(spec, req.where);
      const expression = await expressionOf(spec, req.filter);
      const { limit } = req;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
        throw new TypeError(`limit must be an integer from 1 to ${maxLimit}`);
      }
      const after = req.cursor === undefined ? undefined : decodeCursor(object, req.cursor);
      if (!conditions) return { records: [] };
      let q = db.selectFrom(spec.table).select(columns).where(filter(conditions));
      // The client's expression is ANDed after the row filter, never merged into it.
      if (expression) q = q.where((eb) => compileExpression(eb, expression));
      if (after !== undefined) q = q.where('id', '>', after);
      // One row more than asked tells whether another page exists without a count.
      const rows = await opened(
        spec,
        await q
          .orderBy('id')
          .limit(limit + 1)
          .execute(),
      );
      if (rows.length <= limit) return { records: rows };
      const records = rows.slice(0, limit);
      return { records, nextCursor: encodeCursor(object, String(records[limit - 1]?.id)) };
    },

    async count(object, where = [], expr?) {
      const spec = specOf(object);
      const conditions = await conditionsOf(spec, where);
      const expression = await expressionOf(spec, expr);
      if (!conditions) return 0;
      let q = db
        .selectFrom(spec.table)
        .select((eb) => eb.fn.countAll().as('n'))
        .where(filter(conditions));
      if (expression) q = q.where((eb) => compileExpression(eb, expression));
      const row = await q.executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async create(object, input) {
      const spec = specOf(object);
      const values = checkValues(spec, input, 'create');
      const seal = await sealerOf(spec);
      return db.transaction().execute(async (trx) => {
        const derived = object === 'account' ? {} : await parentOf(trx, spec, values, []);
        const now = new Date().toISOString();
        const id = randomId(spec.prefix);
        await trx
          .insertInto(spec.table)
          .values({ ...seal(id, values), ...derived, id, created_at: now, updated_at: now })
          .execute();
        return { id, ...pick(values, Object.keys(input)), ...derived };
      });
    },

    async update(object, id, input, where) {
      const spec = specOf(object);
      const values = checkValues(spec, input, 'update');
      // The plain conditions judge the new values; the blinded ones go into the SQL.
      const plainConditions = normalizeWhere(spec, where);
      const conditions = await conditionsOf(spec, where);
      if (!plainConditions || !conditions || !plausibleId(id)) return undefined;
      const seal = await sealerOf(spec);
      return db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom(spec.table)
          .select(['id', 'territory', 'owner'])
          .where('id', '=', id)
          .where(filter(conditions))
          .executeTakeFirst();
        if (!existing) return undefined;
        if (Object.keys(values).length === 0) return { id };

        const { next, derived } = await updateOf(object, values, existing, plainConditions, async () => {
          const current = await trx
            .selectFrom(spec.table)
            .select(parentColumns(spec))
            .where('id', '=', id)
            .executeTakeFirstOrThrow();
          return parentOf(trx, spec, { ...current, ...values }, plainConditions);
        });
        await trx
          .updateTable(spec.table)
          .set({ ...seal(id, next), updated_at: new Date().toISOString() })
          .where('id', '=', id)
          .execute();
        await cascadeOwnership(trx, spec, id, next);
        return { id, ...pick(values, Object.keys(input)), ...derived };
      });
    },

    async delete(object, id, where) {
      const spec = specOf(object);
      const conditions = await conditionsOf(spec, where);
      if (!conditions || !plausibleId(id)) return false;
      return db.transaction().execute(async (trx) => {
        const existing = await trx
          .selectFrom(spec.table)
          .select('id')
          .where('id', '=', id)
          .where(filter(conditions))
          .executeTakeFirst();
        if (!existing) return false;
        await deleteDependents(trx, object, id);
        await trx.deleteFrom(spec.table).where('id', '=', id).execute();
        return true;
      });
    },

    async aggregate(object, req: AggregateRequest) {
      const spec = specOf(object);
      const groupBy = req.groupBy === undefined ? undefined : fieldSpec(spec, req.groupBy).name;
      const metrics = req.metrics.map((metric) => checkMetric(spec, metric));
      // A group or a min/max of ciphertext would be meaningless, and its order would leak.
      if (groupBy !== undefined) fields?.refuseOrder(spec, groupBy, 'group_by');
      for (const m of metrics) if (m.field !== undefined) fields?.refuseOrder(spec, m.field, m.fn);
      const conditions = await conditionsOf(spec, req.where);
      const expression = await expressionOf(spec, req.filter);
      const { limit } = req;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
        throw new TypeError(`limit must be an integer from 1 to ${maxLimit}`);
      }
      if (!conditions) return { groups: [], truncated: false };
      let q = db
        .selectFrom(spec.table)
        .where(filter(conditions))
        .select((eb) => [
          eb.fn.countAll().as('n'),
          ...metrics.map((m, i) => metricExpression(eb, m).as(`m${i}`)),
        ]);
      // The client's expression is ANDed after the row filter, never merged into it.
      if (expression) q = q.where((eb) => compileExpression(eb, expression));
      if (groupBy) {
        // Dates are stored as ISO 8601 text on both stores: the month is its first seven characters.
        const key =
          req.bucket === 'month' ? sql<string>`substr(${sql.ref(groupBy)}, 1, 7)` : sql.ref(groupBy);
        q = q.select(key.as('g')).groupBy(key).orderBy(key);
      }
      // One group more than asked tells whether the answer was cut short.
      const rows = (await q.limit(limit + 1).execute()) as Row[];
      const groups = rows.slice(0, limit).map((row) => ({
        key: groupBy ? (row.g ?? null) : null,
        count: Number(row.n),
        // PostgreSQL answers sums and averages as numeric text; a number field's metric is a number.
        values: metrics.map((m, i) => metricValue(row[`m${i}`], m.numeric)),
      }));
      return { groups, truncated: rows.length > limit };
    },
  };
}

/** A metric over a known field of a type it makes sense for; anything else is a caller's mistake. */
export function checkMetric(spec: ObjectSpec, metric: Metric): Metric & { numeric: boolean } {
  const fns = ['count', 'sum', 'avg', 'min', 'max'];
  if (!fns.includes(metric?.fn)) throw new TypeError('metric fn must be count, sum, avg, min or max');
  if (metric.fn === 'count') {
    if (metric.field !== undefined) throw new TypeError('count takes no field');
    return { fn: 'count', numeric: true };
  }
  const field = fieldSpec(spec, metric.field);
  const numeric = field.type === 'number' || metric.fn === 'avg';
  const ordered = field.type === 'date' || field.type === 'datetime';
  if (!(field.type === 'number' || ((metric.fn === 'min' || metric.fn === 'max') && ordered))) {
    throw new TypeError(`${metric.fn} cannot be taken of ${spec.object} field ${field.name}`);
  }
  return { fn: metric.fn, field: field.name, numeric };
}

function metricExpression(eb: ExpressionBuilder<CrmDb, CrmTable>, metric: Metric) {
  const field = metric.field as string;
  switch (metric.fn) {
    case 'sum':
      return eb.fn.sum(field);
    case 'avg':
      return eb.fn.avg(field);
    case 'min':
      return eb.fn.min(field);
    case 'max':
      return eb.fn.max(field);
    default:
      return eb.fn.countAll();
  }
}

function metricValue(value: unknown, numeric: boolean): number | string | null {
  if (value === null || value === undefined) return null;
  return numeric ? Number(value) : String(value);
}

function filter(conditions: readonly NormalCondition[]): Filter {
  return (eb) =>
    eb.and(
      conditions.map((c) => (c.op === 'eq' ? eb(c.field, '=', c.value) : eb(c.field, 'in', [...c.value]))),
    );
}

/** What decides the SQL of a read by id: table, columns, and each condition's field, operator and arity. */
function readShape(
  table: CrmTable,
  columns: readonly string[],
  conditions: readonly NormalCondition[],
): string {
  const where = conditions.map((c) => (c.op === 'eq' ? `${c.field}=` : `${c.field} in ${c.value.length}`));
  return `${table}|${columns.join(',')}|${where.join('&')}`;
}

/** The conditions' values in the order filter() binds them. */
function valuesOf(conditions: readonly NormalCondition[]): Array<string | number> {
  return conditions.flatMap((c) => (c.op === 'eq' ? [c.value] : c.value));
}

function plausibleId(id: string): boolean {
  if (typeof id !== 'string') throw new TypeError('id must be a string');
  return id.length > 0 && id.length <= 64;
}

function parentColumns(spec: ObjectSpec): string[] {
  return parentFields.filter((f) => spec.fields.has(f));
}

/**
 * Territory and owner of a child record come from its account (through its contact or opportunity,
 * for a note). The parent must exist and satisfy the caller's territory/owner conditions and any
 * territory/owner the caller supplied; otherwise it is reported exactly like a missing parent, so a
 * write cannot probe for records of another territory.
 */
async function parentOf(
  trx: Transaction<CrmDb>,
  spec: ObjectSpec,
  values: Row,
  conditions: readonly NormalCondition[],
): Promise<Row> {
  const visible: NormalCondition[] = conditions.filter((c) =>
    (inheritedFields as readonly string[]).includes(c.field),
  );
  for (const field of inheritedFields) {
    const value = values[field];
    if (typeof value === 'string') visible.push({ field, op: 'eq', value });
  }
  const lookup = async (table: CrmTable, id: string, columns: string[]) =>
    trx.selectFrom(table).select(columns).where('id', '=', id).where(filter(visible)).executeTakeFirst();
  const missing = (field: string) => new InputError(`${field} does not name a record you can see`, { field });

  let accountId = typeof values.account_id === 'string' ? values.account_id : undefined;
  for (const [field, table] of [
    ['contact_id', 'crm_contacts'],
    ['opportunity_id', 'crm_opportunities'],
  ] as const) {
    const ref = values[field];
    if (!spec.fields.has(field) || typeof ref !== 'string') continue;
    const parent = await lookup(table, ref, ['account_id']);
    if (!parent) throw missing(field);
    if (accountId !== undefined && parent.account_id !== accountId) {
      throw new InputError(`${field} belongs to another account than account_id`, { field });
    }
    accountId = String(parent.account_id);
  }
  if (accountId === undefined) {
    throw new InputError(
      `a ${spec.object} needs account_id${spec.object === 'note' ? ', contact_id or opportunity_id' : ''}`,
      {
        field: 'account_id',
      },
    );
  }
  const account = await lookup('crm_accounts', accountId, ['territory', 'owner']);
  if (!account) throw missing('account_id');
  return { account_id: accountId, territory: account.territory ?? null, owner: account.owner ?? null };
}

/** Children follow their account (and notes their contact or opportunity) when it changes hands. */
async function cascadeOwnership(
  trx: Transaction<CrmDb>,
  spec: ObjectSpec,
  id: string,
  next: Row,
): Promise<void> {
  const changed = pick(next, ['territory', 'owner']);
  if (Object.keys(changed).length === 0) return;
  if (spec.object === 'account') {
    for (const table of ['crm_contacts', 'crm_opportunities', 'crm_notes'] as const) {
      await trx.updateTable(table).set(changed).where('account_id', '=', id).execute();
    }
  } else if (spec.object === 'contact' || spec.object === 'opportunity') {
    const ref = spec.object === 'contact' ? 'contact_id' : 'opportunity_id';
    await trx
      .updateTable('crm_notes')
      .set({ ...changed, account_id: next.account_id ?? null })
      .where(ref, '=', id)
      .execute();
  }
}

/** Deleting a record deletes what hangs off it, as Salesforce does: an account its contacts, opportunities and notes. */
async function deleteDependents(trx: Transaction<CrmDb>, object: CrmObject, id: string): Promise<void> {
  if (object === 'account') {
    await trx
      .deleteFrom('crm_notes')
      .where((eb) =>
        eb.or([
          eb('account_id', '=', id),
          eb('contact_id', 'in', eb.selectFrom('crm_contacts').select('id').where('account_id', '=', id)),
          eb(
            'opportunity_id',
            'in',
            eb.selectFrom('crm_opportunities').select('id').where('account_id', '=', id),
          ),
        ]),
      )
      .execute();
    await trx.deleteFrom('crm_contacts').where('account_id', '=', id).execute();
    await trx.deleteFrom('crm_opportunities').where('account_id', '=', id).execute();
  } else if (object === 'contact') {
    await trx.deleteFrom('crm_notes').where('contact_id', '=', id).execute();
  } else if (object === 'opportunity') {
    await trx.deleteFrom('crm_notes').where('opportunity_id', '=', id).execute();
  }
}
