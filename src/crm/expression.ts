import type { ComparisonOperator, Expression, ExpressionBuilder, SqlBool } from 'kysely';
import { InputError } from '../errors/index.js';
import type { FieldSpec, ObjectSpec } from './metadata.js';
import type { FilterExpr, FilterOp } from './types.js';
import { conditionValue, fieldSpec, maxInValues, type Scalar } from './validate.js';

/**
 * Filter expressions (and/or/not over comparisons) for the connector: checked against metadata, then
 * compiled with Kysely's expression builder. Field names only ever come from metadata and values are
 * always bound parameters, so no part of a client's filter becomes SQL text.
 */

/**
 * Bounds that hold for any expression a caller builds; the gateway's own parser is far stricter. They
 * keep the compiler's recursion shallow and every query below the backends' parameter limits.
 */
export const maxExpressionDepth = 16;
export const maxExpressionTerms = 256;

export type NormalExpr =
  | { readonly kind: 'compare'; readonly field: string; readonly op: FilterOp; readonly value: Scalar }
  | { readonly kind: 'in'; readonly field: string; readonly values: readonly Scalar[] }
  | { readonly kind: 'and' | 'or'; readonly items: readonly NormalExpr[] }
  | { readonly kind: 'not'; readonly item: NormalExpr };

const sqlOperator: Readonly<Record<FilterOp, ComparisonOperator>> = {
  eq: '=',
  ne: '<>',
  gt: '>',
  ge: '>=',
  lt: '<',
  le: '<=',
};

/**
 * The expression with every field known and every value of the field's type. An unknown field, an
 * unknown node or an expression beyond the bounds is the caller's mistake (TypeError); a value of the
 * wrong type may come from a client and is an InputError naming the field, never the value.
 */
export function normalizeExpression(spec: ObjectSpec, expr: FilterExpr): NormalExpr {
  let terms = 0;
  const walk = (node: FilterExpr, depth: number): NormalExpr => {
    if (depth > maxExpressionDepth) {
      throw new TypeError(`filter expression nests deeper than ${maxExpressionDepth} levels`);
    }
    if (typeof node !== 'object' || node === null)
      throw new TypeError('filter expression node must be an object');
    if (++terms > maxExpressionTerms) {
      throw new TypeError(`filter expression has more than ${maxExpressionTerms} nodes`);
    }
    switch (node.kind) {
      case 'and':
      case 'or':
        if (!Array.isArray(node.items)) throw new TypeError(`${node.kind} takes an array of expressions`);
        return { kind: node.kind, items: node.items.map((item) => walk(item, depth + 1)) };
      case 'not':
        return { kind: 'not', item: walk(node.item, depth + 1) };
      case 'compare': {
        const field = fieldSpec(spec, node.field);
        if (!Object.hasOwn(sqlOperator, node.op)) {
          throw new TypeError(`condition on ${field.name}: unknown operator`);
        }
        return { kind: 'compare', field: field.name, op: node.op, value: filterValue(field, node.value) };
      }
      case 'in': {
        const field = fieldSpec(spec, node.field);
        const values: unknown = node.values;
        if (!Array.isArray(values)) throw new TypeError(`condition on ${field.name}: in takes an array`);
        if (values.length > maxInValues) {
          throw new TypeError(`condition on ${field.name}: at most ${maxInValues} values in one in-list`);
        }
        return { kind: 'in', field: field.name, values: values.map((v: unknown) => filterValue(field, v)) };
      }
      default:
        throw new TypeError('unknown filter expression node');
    }
  };
  return walk(expr, 1);
}

/**
 * The expression for a Kysely `where`. Callers AND it with the row filter (`.where(rowFilter)
 * .where(expression)`); Kysely parenthesises every and/or list, so an `or` here stays inside.
 */
export function compileExpression<DB, TB extends keyof DB>(
  eb: ExpressionBuilder<DB, TB>,
  expr: NormalExpr,
): Expression<SqlBool> {
  // The dynamic column names were checked against metadata in normalizeExpression.
  const loose = eb as unknown as ExpressionBuilder<Record<string, Record<string, Scalar | null>>, string>;
  const compile = (node: NormalExpr): Expression<SqlBool> => {
    switch (node.kind) {
      case 'and':
        return loose.and(node.items.map(compile));
      case 'or':
        return loose.or(node.items.map(compile));
      case 'not':
        return loose.not(loose.parens(compile(node.item)));
      case 'compare':
        return loose(node.field, sqlOperator[node.op], node.value);
      case 'in':
        // An empty list matches nothing: `or` of no terms is Kysely's constant false.
        return node.values.length === 0 ? loose.or([]) : loose(node.field, 'in', [...node.values]);
    }
  };
  return compile(expr);
}

const isoDate = /^\d{4}-\d{2}-\d{2}$/;
const isoDateTime = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?Z?)?$/;

/** A value checked for the field's type. Dates compare as ISO text, so only ISO text is accepted. */
function filterValue(field: FieldSpec, value: unknown): Scalar {
  const scalar = conditionValue(field, value);
  if (field.type === 'date' && !isoDate.test(String(scalar))) {
    throw new InputError(`filter on ${field.name} needs a date as YYYY-MM-DD`, { field: field.name });
  }
  if (field.type === 'datetime' && !isoDateTime.test(String(scalar))) {
    throw new InputError(`filter on ${field.name} needs an ISO 8601 date or UTC date-time`, {
      field: field.name,
    });
  }
  return scalar;
}
