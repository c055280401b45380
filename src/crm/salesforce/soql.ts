import { InputError } from '../../errors/index.js';
import type { NormalExpr } from '../expression.js';
import type { FilterOp } from '../types.js';
import type { NormalCondition, Scalar } from '../validate.js';

/**
 * Gatehouse conditions and filter expressions as SOQL. Field paths only ever come from the mapping
 * (checked against metadata before they get here), and every value goes through `soqlLiteral`, the one
 * function that turns data into SOQL text.
 */

export type SoqlType = 'id' | 'string' | 'number' | 'date' | 'datetime';

/** A Gatehouse field where SOQL sees it: its path (`Account.Owner.Email`) and how its values are written. */
export interface SoqlField {
  readonly path: string;
  readonly type: SoqlType;
}

const escapes: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  "'": "\\'",
  '"': '\\"',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

const isoDate = /^\d{4}-\d{2}-\d{2}$/;
const isoDateTime = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?Z?)?$/;

/**
 * The SOQL literal of a value: quoted and escaped text (SOQL's escape sequences, per the SOQL
 * reference "Quoted String Escape Sequences"), a plain decimal number, or an unquoted date or UTC
 * date-time. Control characters SOQL has no escape for are refused rather than passed through.
 */
export function soqlLiteral(value: Scalar | null, type: SoqlType, field = 'value'): string {
  if (value === null) return 'null';
  switch (type) {
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new InputError(`${field} needs a number`, { field });
      }
      // Never an exponent: SOQL numbers are plain decimals.
      return value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
    }
    case 'date':
      if (typeof value !== 'string' || !isoDate.test(value)) {
        throw new InputError(`${field} needs a date as YYYY-MM-DD`, { field });
      }
      return value;
    case 'datetime':
      return soqlDateTime(value, field);
    default: {
      if (typeof value !== 'string') throw new InputError(`${field} needs text`, { field });
      let out = "'";
      for (const ch of value) {
        const escaped = escapes[ch];
        if (escaped) out += escaped;
        else if (ch < ' ' || ch === '\x7f') {
          throw new InputError(`${field} holds a control character`, { field });
        } else out += ch;
      }
      return `${out}'`;
    }
  }
}

/** A UTC date-time literal (`2025-06-30T12:00:00.000Z`); a bare date is its midnight. */
function soqlDateTime(value: Scalar, field: string): string {
  const match = typeof value === 'string' ? isoDateTime.exec(value) : null;
  if (!match) throw new InputError(`${field} needs an ISO 8601 date or UTC date-time`, { field });
  const [, day, hh = '00', mm = '00', ss = '00', fraction = '.000'] = match;
  const ms = fraction.slice(1, 4).padEnd(3, '0');
  return `${day}T${hh}:${mm}:${ss}.${ms}Z`;
}

const operators: Readonly<Record<FilterOp, string>> = {
  eq: '=',
  ne: '!=',
  gt: '>',
  ge: '>=',
  lt: '<',
  le: '<=',
};
const negated: Readonly<Record<FilterOp, FilterOp>> = {
  eq: 'ne',
  ne: 'eq',
  gt: 'le',
  ge: 'lt',
  lt: 'ge',
  le: 'gt',
};

/** Matches nothing / everything: every record has an Id. */
const never = 'Id = null';
const always = 'Id != null';

/** The row filter: every condition must hold. */
export function soqlConditions(
  conditions: readonly NormalCondition[],
  fieldOf: (name: string) => SoqlField,
): string[] {
  return conditions.map((c) => {
    const field = fieldOf(c.field);
    if (c.op === 'eq') return `${field.path} = ${soqlLiteral(c.value, field.type, c.field)}`;
    return inList(field, c.field, c.value, true);
  });
}

/**
 * A filter expression as SOQL with SQL's null semantics. SOQL treats null as a value (`Industry !=
 * 'x'` and `NOT Industry = 'x'` both match an empty Industry), whereas the connector contract says a
 * comparison with an empty field is false. So the expression is compiled as "certainly true": a `not`
 * is pushed down as "certainly false", and a negative comparison also asks for a value.
 */
export function soqlExpression(expr: NormalExpr, fieldOf: (name: string) => SoqlField): string {
  const holds = (node: NormalExpr, positive: boolean): string => {
    switch (node.kind) {
      case 'not':
        return holds(node.item, !positive);
      case 'and':
      case 'or': {
        const joinAnd = (node.kind === 'and') === positive;
        if (node.items.length === 0) return joinAnd ? always : never;
        return `(${node.items.map((item) => holds(item, positive)).join(joinAnd ? ' AND ' : ' OR ')})`;
      }
      case 'compare': {
        const field = fieldOf(node.field);
        const op = positive ? node.op : negated[node.op];
        const text = `${field.path} ${operators[op]} ${soqlLiteral(node.value, field.type, node.field)}`;
        return op === 'ne' ? `(${text} AND ${field.path} != null)` : text;
      }
      case 'in': {
        const field = fieldOf(node.field);
        if (node.values.length === 0) return positive ? never : always;
        const list = inList(field, node.field, node.values, positive);
        return positive ? list : `(${list} AND ${field.path} != null)`;
      }
    }
  };
  return holds(expr, true);
}

function inList(field: SoqlField, name: string, values: readonly Scalar[], positive: boolean): string {
  if (values.length === 0) return positive ? never : always;
  const items = values.map((v) => soqlLiteral(v, field.type, name)).join(', ');
  return `${field.path} ${positive ? 'IN' : 'NOT IN'} (${items})`;
}

export interface SelectStatement {
  readonly fields: readonly string[];
  readonly from: string;
  /** Clauses ANDed together, each already SOQL. */
  readonly where?: readonly string[];
  readonly groupBy?: string;
  readonly orderBy?: string;
  readonly limit?: number;
}

/** A SELECT statement from parts that are each field paths or compiled clauses, never raw input. */
export function soqlSelect(statement: SelectStatement): string {
  const where = statement.where ?? [];
  const parts = [`SELECT ${statement.fields.join(', ')} FROM ${statement.from}`];
  // Each clause is parenthesised, so an OR inside one never mixes with the ANDs between them.
  if (where.length > 0) parts.push(`WHERE ${where.map((clause) => `(${clause})`).join(' AND ')}`);
  if (statement.groupBy) parts.push(`GROUP BY ${statement.groupBy}`);
  if (statement.orderBy) parts.push(`ORDER BY ${statement.orderBy}`);
  if (statement.limit !== undefined) {
    if (!Number.isSafeInteger(statement.limit) || statement.limit < 1) {
      throw new TypeError('limit must be a positive integer');
    }
    parts.push(`LIMIT ${statement.limit}`);
  }
  return parts.join(' ');
}
