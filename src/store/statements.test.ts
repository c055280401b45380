import SQLite from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { maxStatementChars, reusingStatements } from './statements.js';

const files: SQLite.Database[] = [];
afterEach(() => {
  for (const file of files.splice(0)) file.close();
});

function reusing() {
  const file = new SQLite(':memory:');
  files.push(file);
  file.exec('create table t (a text, b text, c text, d text, e text, f text)');
  return reusingStatements(file);
}

/** A batch insert of `rows` rows: one SQL text per row count, as Kysely writes a group commit. */
const insertOf = (rows: number) =>
  `insert into t (a, b, c, d, e, f) values ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`;

describe('reusingStatements', () => {
  it('reuses a statement by its SQL text', () => {
    const database = reusing();
    const first = database.prepare('select a from t where a = ?');
    expect(database.prepare('select a from t where a = ?')).toBe(first);
  });

  it('keeps the SQL text of its statements within maxStatementChars, however many batch sizes run', () => {
    const database = reusing();
    const sizes = Array.from({ length: 1000 }, (_, i) => i + 1);
    const prepared = new Map(sizes.map((rows) => [rows, database.prepare(insertOf(rows))]));
    // Newest first: each still kept answers the same statement, until the first that was let go.
    let held = 0;
    let kept = 0;
    for (const rows of [...sizes].reverse()) {
      if (database.prepare(insertOf(rows)) !== prepared.get(rows)) break;
      held += insertOf(rows).length;
      kept += 1;
    }
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(sizes.length);
    expect(held).toBeLessThanOrEqual(maxStatementChars);
    // A short statement is still kept beside them.
    const short = database.prepare('select count(*) from t');
    expect(database.prepare('select count(*) from t')).toBe(short);
  });
});
