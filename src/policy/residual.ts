import type * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { RowCondition } from './runtime.js';

/**
 * The partial-evaluation-to-query compiler. Cedar evaluates the runtime policies with the record's
 * row attributes unknown and returns, per policy, a residual expression over them; this file turns
 * those residuals into connector conditions `{ field, op: 'eq' | 'in', value }` that all must hold.
 *
 * Only a small, exact fragment is translated: `&&`, `||` of conditions on one field, `!`, `==`, `!=`
 * and `[literals].contains(field)` over the row fields, and boolean constants. Anything else — and any
 * combination whose meaning the conditions cannot express exactly — throws Untranslatable, which the
 * caller turns into a denial: a row filter may come out narrower than the policy only by refusing the
 * request, never wider.
 */

/** Internal: caught inside the policy module and turned into a denial, never shown as such. */
export class Untranslatable extends Error {
  readonly code = 'ROW_FILTER_UNTRANSLATABLE';
  readonly policyId: string;
  constructor(policyId: string, what: string) {
    super(`policy ${policyId} cannot be compiled into a row filter: ${what}`);
    this.policyId = policyId;
  }
}

/** `field ∈ values` when positive, `field ∉ values` when not. */
interface Literal {
  readonly field: string;
  readonly values: readonly string[];
  readonly positive: boolean;
}

/** A constant, or a conjunction of literals. */
type Formula =
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'and'; readonly lits: readonly Literal[] };

const TRUE: Formula = { kind: 'const', value: true };
const FALSE: Formula = { kind: 'const', value: false };

export type ResidualOutcome =
  | { readonly allowed: true; readonly where: RowCondition[]; readonly policyIds: string[] }
  | { readonly allowed: false; readonly policyIds: string[]; readonly untranslatable?: string };

/**
 * Combines the residuals of one partial evaluation: a permit whose residual is `true` opens every row,
 * the permits' residuals are OR-ed (only when that OR is expressible), and each forbid residual is
 * negated into the filter (only when it is a single literal). `rowFields` maps the names of unknowns to
 * connector fields; `domains` gives the fields whose values form a closed vocabulary (the region), over
 * which "not one of these" is exactly "one of the others".
 */
export function compileResiduals(
  response: cedar.ResidualResponse,
  effects: ReadonlyMap<string, 'permit' | 'forbid'>,
  rowFields: ReadonlyMap<string, string>,
  domains: ReadonlyMap<string, readonly string[]> = new Map(),
): ResidualOutcome {
  if (response.errored.length > 0) return { allowed: false, policyIds: [...response.errored].sort() };
  try {
    const permits: { id: string; formula: Formula }[] = [];
    const forbids: { id: string; formula: Formula }[] = [];
    let untranslatable: Untranslatable | undefined;
    let permitUntranslatable = false;
    for (const id of Object.keys(response.residuals).sort()) {
      const policy = response.residuals[id] as cedar.PolicyJson;
      const effect = effects.get(id) ?? policy.effect;
      let formula: Formula;
      try {
        formula = policyFormula(id, policy, rowFields);
      } catch (error) {
        if (!(error instanceof Untranslatable)) throw error;
        untranslatable ??= error;
        if (effect === 'permit') permitUntranslatable = true;
        continue;
      }
      if (formula.kind === 'const' && !formula.value) continue;
      (effect === 'forbid' ? forbids : permits).push({ id, formula });
    }
    // Decided without the row: a forbid that always holds, or no permit that could ever hold.
    const always = forbids.find((f) => f.formula.kind === 'const');
    if (always) return { allowed: false, policyIds: [always.id] };
    if (permits.length === 0 && !permitUntranslatable) return { allowed: false, policyIds: [] };
    if (untranslatable) throw untranslatable;
    const forbidLits: Literal[] = [];
    for (const { id, formula } of forbids) {
      const lits = (formula as Extract<Formula, { kind: 'and' }>).lits;
      if (lits.length !== 1) throw new Untranslatable(id, 'a forbid over more than one condition');
      const negated = complement(negateLiteral(lits[0] as Literal), domains);
      if (!negated.positive) throw new Untranslatable(id, `a forbid on ${negated.field} equal to a value`);
      forbidLits.push(negated);
    }
    if (permits.length === 0) return { allowed: false, policyIds: [] };
    let permitLits: readonly Literal[];
    const open = permits.find((p) => p.formula.kind === 'const');
    if (open) permitLits = [];
    else {
      const distinct = new Map<string, { id: string; lits: readonly Literal[] }>();
      for (const p of permits) {
        const lits = (p.formula as Extract<Formula, { kind: 'and' }>).lits;
        for (const lit of lits)
          if (!lit.positive) throw new Untranslatable(p.id, `a permit on ${lit.field} not equal to a value`);
        distinct.set(JSON.stringify(canonical(lits)), { id: p.id, lits });
      }
      const alternatives = [...distinct.values()];
      if (alternatives.length === 1) permitLits = (alternatives[0] as { lits: readonly Literal[] }).lits;
      else {
        const single = alternatives.every((a) => a.lits.length === 1);
        const field = alternatives[0]?.lits[0]?.field;
        if (!single || alternatives.some((a) => a.lits[0]?.field !== field)) {
          throw new Untranslatable(alternatives.map((a) => a.id).join(', '), 'permits on different fields');
        }
        permitLits = [
          {
            field: field as string,
            positive: true,
            values: alternatives.flatMap((a) => a.lits[0]?.values ?? []),
          },
        ];
      }
    }
    const where: RowCondition[] = [];
    const seen = new Set<string>();
    for (const lit of [...permitLits, ...forbidLits]) {
      const values = [...new Set(lit.values)].sort();
      if (values.length === 0) return { allowed: false, policyIds: permits.map((p) => p.id) };
      const condition: RowCondition =
        values.length === 1
          ? { field: lit.field, op: 'eq', value: values[0] as string }
          : { field: lit.field, op: 'in', value: values };
      const key = JSON.stringify(condition);
      if (!seen.has(key)) where.push(condition);
      seen.add(key);
    }
    return { allowed: true, where, policyIds: open ? [open.id] : permits.map((p) => p.id) };
  } catch (error) {
    if (error instanceof Untranslatable) {
      return { allowed: false, policyIds: error.policyId.split(', '), untranslatable: error.message };
    }
    throw error;
  }
}

function canonical(lits: readonly Literal[]): Literal[] {
  return lits
    .map((l) => ({ field: l.field, positive: l.positive, values: [...new Set(l.values)].sort() }))
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

function policyFormula(
  id: string,
  policy: cedar.PolicyJson,
  rowFields: ReadonlyMap<string, string>,
): Formula {
  // The request's principal, action and resource are known, so Cedar has already decided the scope.
  for (const part of [policy.principal, policy.action, policy.resource]) {
    if (part.op !== 'All') throw new Untranslatable(id, `an undecided ${part.op} scope constraint`);
  }
  let formula = TRUE;
  for (const clause of policy.conditions) {
    const body = compile(id, clause.body, rowFields);
    formula = and(formula, clause.kind === 'when' ? body : negate(id, body));
  }
  return formula;
}

function compile(id: string, expr: cedar.Expr, rowFields: ReadonlyMap<string, string>): Formula {
  const e = expr as Record<string, unknown>;
  if ('Value' in e) {
    if (typeof e.Value === 'boolean') return e.Value ? TRUE : FALSE;
    throw new Untranslatable(id, 'a non-boolean constant condition');
  }
  const binary = (op: string) => e[op] as { left: cedar.Expr; right: cedar.Expr };
  if ('&&' in e)
    return and(compile(id, binary('&&').left, rowFields), compile(id, binary('&&').right, rowFields));
  if ('||' in e)
    return or(id, compile(id, binary('||').left, rowFields), compile(id, binary('||').right, rowFields));
  if ('!' in e) return negate(id, compile(id, (e['!'] as { arg: cedar.Expr }).arg, rowFields));
  if ('==' in e || '!=' in e) {
    const op = '==' in e ? '==' : '!=';
    const { left, right } = binary(op);
    const [field, value] =
      fieldAndValue(rowFields, left, right) ?? fieldAndValue(rowFields, right, left) ?? [];
    if (field === undefined || value === undefined)
      throw new Untranslatable(id, `an ${op} that is not row field against a string`);
    return { kind: 'and', lits: [{ field, values: [value], positive: op === '==' }] };
  }
  if ('contains' in e) {
    const { left, right } = binary('contains');
    const field = rowField(rowFields, right);
    const values = literalStrings(left);
    if (field === undefined || values === undefined)
      throw new Untranslatable(id, 'a contains that is not [strings].contains(row field)');
    return values.length === 0 ? FALSE : { kind: 'and', lits: [{ field, values, positive: true }] };
  }
  throw new Untranslatable(id, `the operator ${Object.keys(e)[0] ?? '?'}`);
}

function and(a: Formula, b: Formula): Formula {
  if (a.kind === 'const') return a.value ? b : FALSE;
  if (b.kind === 'const') return b.value ? a : FALSE;
  return { kind: 'and', lits: [...a.lits, ...b.lits] };
}

function or(id: string, a: Formula, b: Formula): Formula {
  if (a.kind === 'const') return a.value ? TRUE : b;
  if (b.kind === 'const') return b.value ? TRUE : a;
  const [x, y] = [a.lits, b.lits];
  if (x.length === 1 && y.length === 1) {
    const [l, r] = [x[0] as Literal, y[0] as Literal];
    if (l.field === r.field && l.positive && r.positive) {
      return { kind: 'and', lits: [{ field: l.field, positive: true, values: [...l.values, ...r.values] }] };
    }
    if (l.field === r.field && !l.positive && !r.positive) {
      // ∉A ∨ ∉B  =  ∉(A ∩ B)
      const values = l.values.filter((v) => r.values.includes(v));
      return values.length === 0
        ? TRUE
        : { kind: 'and', lits: [{ field: l.field, positive: false, values }] };
    }
  }
  throw new Untranslatable(id, 'a disjunction the row filter cannot express');
}

function negate(id: string, f: Formula): Formula {
  if (f.kind === 'const') return f.value ? FALSE : TRUE;
  if (f.lits.length === 1) return { kind: 'and', lits: [negateLiteral(f.lits[0] as Literal)] };
  throw new Untranslatable(id, 'the negation of a conjunction');
}

/** A negative literal over a closed vocabulary as the positive one over the rest of it. */
function complement(lit: Literal, domains: ReadonlyMap<string, readonly string[]>): Literal {
  const domain = domains.get(lit.field);
  if (lit.positive || !domain) return lit;
  return { field: lit.field, positive: true, values: domain.filter((v) => !lit.values.includes(v)) };
}

function negateLiteral(lit: Literal): Literal {
  return { field: lit.field, values: lit.values, positive: !lit.positive };
}

function fieldAndValue(
  rowFields: ReadonlyMap<string, string>,
  maybeField: cedar.Expr,
  maybeValue: cedar.Expr,
): [string, string] | undefined {
  const field = rowField(rowFields, maybeField);
  const value = (maybeValue as { Value?: unknown }).Value;
  return field !== undefined && typeof value === 'string' ? [field, value] : undefined;
}

/** `unknown("resource.territory")` or `unknown("resource").territory`, mapped to a connector field. */
function rowField(rowFields: ReadonlyMap<string, string>, expr: cedar.Expr): string | undefined {
  const e = expr as Record<string, unknown>;
  const unknownName = (x: unknown): string | undefined => {
    const args = (x as { unknown?: unknown } | undefined)?.unknown;
    if (!Array.isArray(args) || args.length !== 1) return undefined;
    const name = (args[0] as { Value?: unknown }).Value;
    return typeof name === 'string' ? name : undefined;
  };
  const direct = unknownName(e);
  if (direct !== undefined) return rowFields.get(direct);
  const dot = e['.'] as { left: unknown; attr: string } | undefined;
  if (dot && unknownName(dot.left) === 'resource') return rowFields.get(`resource.${dot.attr}`);
  return undefined;
}

function literalStrings(expr: cedar.Expr): string[] | undefined {
  const e = expr as Record<string, unknown>;
  const items: unknown[] | undefined = Array.isArray(e.Set)
    ? (e.Set as unknown[]).map((x) => (x as { Value?: unknown }).Value)
    : Array.isArray(e.Value)
      ? (e.Value as unknown[])
      : undefined;
  if (!items || !items.every((v): v is string => typeof v === 'string')) return undefined;
  return items;
}
