/**
 * The database behind a test's data dir. By default the embedded SQLite file in the data dir. When
 * GATEHOUSE_TEST_DATABASE_URL names a PostgreSQL server (an admin URL such as the one
 * `.ci/services.sh start` prints), each data dir gets a database of its own on that server, created on
 * first use and dropped when the test file ends (test/support/database-setup.ts), so the whole suite
 * runs against PostgreSQL unchanged.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import pg from 'pg';

export const adminUrl = process.env.GATEHOUSE_TEST_DATABASE_URL || undefined;
/** True when this run's stores are on PostgreSQL. */
export const onPostgres = adminUrl !== undefined;

/** Names this run's databases, so the global teardown drops exactly them. */
const run = process.env.GATEHOUSE_TEST_RUN ?? `p${process.ppid}`;
const created = new Set<string>();

function nameOf(dataDir: string): string {
  return `gh_t_${run}_${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)}`;
}

function urlOf(name: string): string {
  const url = new URL(adminUrl as string);
  url.pathname = `/${name}`;
  return url.toString();
}

// C collation: text sorts by bytes, as on SQLite; template0, so creations never wait on each other.
const createSql = (name: string) =>
  `create database ${name} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`;

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Config overrides for a store of `dataDir`: `{}` on SQLite; on PostgreSQL the `database.url` of the
 * data dir's own database, created if need be (the same database every time for the same data dir,
 * so a restarted server finds its data).
 */
export async function testDatabase(dataDir: string): Promise<Record<string, string>> {
  if (!onPostgres) return {};
  const name = nameOf(dataDir);
  if (!created.has(name)) {
    await admin(async (client) => {
      await client.query(createSql(name)).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // duplicate_database: made by an earlier call
      });
    });
    created.add(name);
  }
  return { 'database.url': urlOf(name) };
}

/** The same, synchronously (for the CLI helper): the environment a `gatehouse` process needs. */
export function testDatabaseEnvSync(dataDir: string): Record<string, string> {
  if (!onPostgres) return {};
  const name = nameOf(dataDir);
  if (!created.has(name)) {
    const script = `
      import pg from 'pg';
      const client = new pg.Client({ connectionString: process.env.ADMIN_URL });
      await client.connect();
      await client.query(process.env.CREATE_SQL).catch((e) => { if (e.code !== '42P04') throw e; });
      await client.end();`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ADMIN_URL: adminUrl, CREATE_SQL: createSql(name) },
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`cannot create test database ${name}: ${result.stderr}`);
    created.add(name);
  }
  return { GATEHOUSE_DATABASE_URL: urlOf(name) };
}

/** Drops the data dir's database (a test that removes a data dir for good). */
export async function dropTestDatabase(dataDir: string): Promise<void> {
  const name = nameOf(dataDir);
  if (!onPostgres || !created.has(name)) return;
  created.delete(name);
  await admin((client) => client.query(`drop database if exists ${name} with (force)`));
}

/** Drops every database this test file made. */
export async function dropTestDatabases(): Promise<void> {
  if (!onPostgres || created.size === 0) return;
  const names = [...created];
  created.clear();
  await admin(async (client) => {
    for (const name of names) await client.query(`drop database if exists ${name} with (force)`);
  });
}

/** Drops every database of this run (the global teardown's safety net after a crashed file). */
export async function dropRunDatabases(runId: string): Promise<void> {
  if (!onPostgres) return;
  await admin(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like $1`,
      [`gh_t_${runId}_%`],
    );
    for (const { datname } of rows) {
      await client.query(`drop database if exists ${pg.escapeIdentifier(datname)} with (force)`);
    }
  });
}

/** Runs SQL on the data dir's PostgreSQL database (tests that tamper with the store directly). */
export async function withTestDatabase<T>(
  dataDir: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const { 'database.url': url } = await testDatabase(dataDir);
  if (!url) throw new TypeError('withTestDatabase needs GATEHOUSE_TEST_DATABASE_URL');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Plain SQL on a data dir's store, whichever the backend: portable SQL with `?` placeholders. */
export interface TestSql {
  all<T>(text: string, ...params: unknown[]): Promise<T[]>;
  get<T>(text: string, ...params: unknown[]): Promise<T | undefined>;
  run(text: string, ...params: unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** Opens the store of `dataDir` for a test to read or tamper with, beside a running server. */
export async function openTestSql(dataDir: string): Promise<TestSql> {
  if (!onPostgres) {
    const { default: SQLite } = await import('better-sqlite3');
    const db = new SQLite(join(dataDir, 'gatehouse.db'));
    return {
      all: async <T>(text: string, ...params: unknown[]) => db.prepare(text).all(...params) as T[],
      get: async <T>(text: string, ...params: unknown[]) => db.prepare(text).get(...params) as T | undefined,
      run: async (text, ...params) => {
        db.prepare(text).run(...params);
      },
      close: async () => {
        db.close();
      },
    };
  }
  const { 'database.url': url } = await testDatabase(dataDir);
  // bigint as a number, as the stores answer it.
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format),
  };
  const client = new pg.Client({ connectionString: url, types });
  await client.connect();
  let n = 0;
  const numbered = (text: string) => text.replace(/\?/g, () => `$${++n}`);
  const query = async (text: string, params: unknown[]) => {
    n = 0;
    return (await client.query(numbered(text), params)).rows;
  };
  return {
    all: async <T>(text: string, ...params: unknown[]) => (await query(text, params)) as T[],
    get: async <T>(text: string, ...params: unknown[]) => (await query(text, params))[0] as T | undefined,
    run: async (text, ...params) => {
      await query(text, params);
    },
    close: () => client.end(),
  };
}
