import { FieldEncrypted } from '../errors/index.js';
import type { NormalExpr } from './expression.js';
import {
  blindIndexColumn,
  blindIndexOf,
  isSealed,
  openValue,
  sealedVersion,
  sealValue,
} from './field-crypto.js';
import type { FieldKeys } from './field-keys.js';
import { encryptedFields, specOf, type ObjectSpec } from './metadata.js';
import type { CrmObject } from './types.js';
import type { NormalCondition } from './validate.js';

/**
 * What the embedded CRM does for its encrypted fields: seals them on the way in, opens them on the way
 * out, and turns equality on them into equality on their blind index. Anything that would compare or
 * order their values (a range, a group, a min or max) is refused: the store holds no order to compare.
 */

type Row = Record<string, string | number | null>;

export interface FieldProtection {
  /**
   * Seals under the keys current now: the function answers `values` with each encrypted field sealed
   * for record `id` and its blind index beside it. Resolve it before a transaction (the keys are read
   * outside it) and reuse it for a batch.
   */
  sealer(spec: ObjectSpec): Promise<(id: string, values: Row) => Row>;
  /** Opens the encrypted fields of rows read from the store, in place. */
  open(spec: ObjectSpec, rows: Row[]): Promise<Row[]>;
  conditions(spec: ObjectSpec, conditions: readonly NormalCondition[]): Promise<NormalCondition[]>;
  expression(spec: ObjectSpec, expr: NormalExpr): Promise<NormalExpr>;
  /** Refuses grouping or ordering by an encrypted field. */
  refuseOrder(spec: ObjectSpec, field: string, use: string): void;
}

export function fieldProtection(keys: FieldKeys): FieldProtection {
  const encrypted = (spec: ObjectSpec, field: string) => spec.fields.get(field)?.encrypted === true;
  const index = async (spec: ObjectSpec, field: string, value: string | number) =>
    blindIndexOf(await keys.indexKey(spec.object, field), spec.object, field, String(value));

  const sealer = async (spec: ObjectSpec) => {
    const keyed = await Promise.all(
      encryptedFields(spec).map(async ({ name }) => ({
        field: name,
        ...(await keys.current(spec.object, name)),
        indexKey: await keys.indexKey(spec.object, name),
      })),
    );
    return (id: string, values: Row): Row => {
      const out: Row = { ...values };
      for (const { field, version, key, indexKey } of keyed) {
        const value = values[field];
        if (value === undefined || value === null) continue;
        out[field] = sealValue(key, version, { object: spec.object, id, field }, String(value));
        out[blindIndexColumn(field)] = blindIndexOf(indexKey, spec.object, field, String(value));
      }
      return out;
    };
  };

  return {
    sealer,

    async open(spec, rows) {
      for (const row of rows) {
        const id = String(row.id);
        for (const [field, value] of Object.entries(row)) {
          // A value from before encryption reads as it is until the start-up migration has sealed it.
          if (!encrypted(spec, field) || typeof value !== 'string' || !isSealed(value)) continue;
          const key = await keys.key(spec.object, field, sealedVersion(value) ?? 0);
          row[field] = openValue(key, { object: spec.object, id, field }, value);
        }
      }
      return rows;
    },

    async conditions(spec, conditions) {
      // Row filters are mostly on plain fields (territory, owner): those need no key at all.
      if (!conditions.some((c) => encrypted(spec, c.field))) return [...conditions];
      return Promise.all(
        conditions.map(async (c): Promise<NormalCondition> => {
          if (!encrypted(spec, c.field)) return c;
          const field = blindIndexColumn(c.field);
          return c.op === 'eq'
            ? { field, op: 'eq', value: await index(spec, c.field, c.value) }
            : { field, op: 'in', value: await Promise.all(c.value.map((v) => index(spec, c.field, v))) };
        }),
      );
    },

    async expression(spec, expr) {
      const walk = async (node: NormalExpr): Promise<NormalExpr> => {
        switch (node.kind) {
          case 'and':
          case 'or':
            return { kind: node.kind, items: await Promise.all(node.items.map(walk)) };
          case 'not':
            return { kind: 'not', item: await walk(node.item) };
          case 'in':
            if (!encrypted(spec, node.field)) return node;
            return {
              kind: 'in',
              field: blindIndexColumn(node.field),
              values: await Promise.all(node.values.map((v) => index(spec, node.field, v))),
            };
          case 'compare':
            if (!encrypted(spec, node.field)) return node;
            if (node.op !== 'eq' && node.op !== 'ne') throw new FieldEncrypted(node.field, node.op);
            return {
              kind: 'compare',
              field: blindIndexColumn(node.field),
              op: node.op,
              value: await index(spec, node.field, node.value),
            };
        }
      };
      return walk(expr);
    },

    refuseOrder(spec, field, use) {
      if (encrypted(spec, field)) throw new FieldEncrypted(field, use);
    },
  };
}

/**
 * Rows read from the crm_* tables by hand (a scrub of a data dir's file), with their encrypted fields
 * opened and their blind indexes left out: what the embedded CRM would answer for them.
 */
export async function openStoredRecords(keys: FieldKeys, object: CrmObject, rows: Row[]): Promise<Row[]> {
  const spec = specOf(object);
  const opened = await fieldProtection(keys).open(spec, rows);
  const indexes = encryptedFields(spec).map((f) => blindIndexColumn(f.name));
  return opened.map((row) =>
    Object.fromEntries(Object.entries(row).filter(([column]) => !indexes.includes(column))),
  );
}
