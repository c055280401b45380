import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql, type Migration } from 'kysely';
import { describe, expect, it } from 'vitest';
import { combineMigrations, storeMigrations, type Migrations } from './index.js';

/** A migration that creates one table, so what ran shows in the database itself. */
const creating = (table: string): Migration => ({
  async up(db) {
    await db.schema.createTable(table).addColumn('id', 'text').execute();
  },
});

async function tablesAfter(migrations: Migrations): Promise<string[]> {
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
  try {
    for (const name of Object.keys(migrations)) await migrations[name]?.up(db);
    const { rows } = await sql<{
      name: string;
    }>`select name from sqlite_master where type = 'table' order by rowid`.execute(db);
    return rows.map((r) => r.name);
  } finally {
    await db.destroy();
  }
}

describe("combining the modules' migrations", () => {
  it('lists every name once, sorted, and runs the parts of the shared first migration in the order given', async () => {
    const combined = combineMigrations([
      storeMigrations,
      { '001_initial': creating('b_first'), '004_b': creating('b_later') },
      { '002_a': creating('a_table'), '001_initial': creating('a_first') },
    ]);
    expect(Object.keys(combined)).toEqual(['001_initial', '002_a', '004_b']);
    expect(await tablesAfter(combined)).toEqual(['meta', 'b_first', 'a_first', 'a_table', 'b_later']);
  });

  it('refuses a name two modules give, other than the shared first migration', () => {
    expect(() =>
      combineMigrations([{ '030_audit_x': creating('audit_x') }, { '030_audit_x': creating('crm_x') }]),
    ).toThrow('migration 030_audit_x is given by two modules');
  });
});
