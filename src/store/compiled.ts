import { CompiledQuery, type Compilable, type Kysely } from 'kysely';
import { storeKindOf } from './dialect.js';

/** Distinct shapes kept; the hot queries have few (one per table and column list), so few are live. */
const defaultMaxShapes = 500;

/**
 * Queries of a fixed shape, compiled once. Kysely builds and compiles every query anew, which for an
 * indexed read or a small insert costs several times running it. A shape names everything that decides
 * the SQL text (table, columns, operators, the length of each list, the number of rows inserted); its
 * values are bound anew on every call. The first compile of a shape checks that the builder binds
 * exactly the values given, in their order: a shape that does not is compiled every time, not reused.
 */
export class CompiledShapes {
  readonly #max: number;
  /** SQL text by backend and shape; null for a shape whose values the check did not find in order. */
  readonly #sql = new Map<string, string | null>();

  constructor(max = defaultMaxShapes) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('max must be a positive integer');
    this.#max = max;
  }

  /**
   * The query of `shape` with `parameters` bound. `build` makes the same query through the builder (with
   * these values); it runs the first time a shape is seen on a backend, and every time for a shape that
   * failed the check.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only the backend is read
  compile<R>(db: Kysely<any>, shape: string, parameters: readonly unknown[], build: () => Compilable<R>) {
    const key = `${storeKindOf(db)}\n${shape}`;
    const sql = this.#sql.get(key);
    if (typeof sql === 'string') return CompiledQuery.raw(sql, [...parameters]) as CompiledQuery<R>;
    const compiled = build().compile();
    if (sql === undefined) {
      if (this.#sql.size >= this.#max) this.#sql.delete(this.#sql.keys().next().value as string);
      this.#sql.set(key, sameValues(compiled.parameters, parameters) ? compiled.sql : null);
    }
    return compiled;
  }
}

function sameValues(bound: readonly unknown[], given: readonly unknown[]): boolean {
  return bound.length === given.length && bound.every((value, i) => Object.is(value, given[i]));
}
