import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { onPostgres, testDatabase } from '../../test/support/database.js';
import { openStore, openSession, storeMigrations, type Store } from './index.js';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function postgresStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) }, env: {}, cwd: dir });
  const store = await openStore(config, { migrations: storeMigrations });
  cleanups.push(() => store.close());
  return store;
}

/** The statements the connection behind `db` holds prepared under a name. */
async function preparedOn(db: Store['db']): Promise<string[]> {
  const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db);
  return rows.map((row) => row.statement);
}

describe.runIf(onPostgres)('statements on PostgreSQL', () => {
  it('a statement run again and again is prepared once under a name; one with other values is the same statement', async () => {
    const store = await postgresStore();
    const session = await openSession(store.db, 'gatehouse-test');
    cleanups.push(() => session.close());
    const read = (key: string) => sql`select value from meta where key = ${key}`.execute(session.db);
    await read('a');
    expect(await preparedOn(session.db)).toEqual([]);
    for (const key of ['b', 'c', 'd', 'e']) await read(key);
    expect(await preparedOn(session.db)).toEqual(['select value from meta where key = $1']);
  });

  it('a prepared statement over a table that changed under it still answers (run unnamed from then on)', async () => {
    const store = await postgresStore();
    const session = await openSession(store.db, 'gatehouse-test');
    cleanups.push(() => session.close());
    await sql`create table changing (id text primary key)`.execute(session.db);
    await sql`insert into changing (id) values ('x')`.execute(session.db);
    const read = () =>
      sql<Record<string, unknown>>`select * from changing where id = ${'x'}`.execute(session.db);
    for (let i = 0; i < 4; i++) await read();
    expect(await preparedOn(session.db)).toHaveLength(1);
    // What another node's migration would do: a column added, so `select *` returns another row type.
    await sql`alter table changing add column note text`.execute(store.db);
    expect((await read()).rows).toEqual([{ id: 'x', note: null }]);
    expect((await read()).rows).toEqual([{ id: 'x', note: null }]);
  });
});
