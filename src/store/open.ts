import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, sql } from 'kysely';
import type { Config } from '../config/index.js';
import { DependencyUnavailable } from '../errors/index.js';
import { storeKindOf, type StoreKind } from './dialect.js';
import type { Migrations } from './migrations.js';
import { reusingStatements } from './statements.js';
import { WaitingSqliteDialect } from './waiting.js';
// Loaded only on PostgreSQL, so the embedded mode never loads the pg driver.
import type { PostgresOptions, Session } from './postgres.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type { Session } from './postgres.js';
export { storeKindOf, type StoreKind } from './dialect.js';

export interface Store {
  readonly db: Db;
  /** The SQLite file in the data dir, or PostgreSQL (`database.url`). */
  readonly kind: StoreKind;
  /** Cheap liveness query for /readyz. */
  ping(): Promise<void>;
  /**
   * Runs `work` while holding the named lock, which on PostgreSQL every node of the database shares
   * (demo seeding happens once however many nodes start together). SQLite: one process, runs at once.
   */
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** How long a statement waits for another process's write lock before the request is refused (503). */
const lockWaitMs = 5000;

export interface StoreOptions {
  /** Every module's migrations, combined by the composition root (openGatehouseStore in src/server). */
  readonly migrations: Migrations;
  /**
   * SQLite: further files in the data dir, by schema name, attached to the one connection (`audit`:
   * `audit.db`). Each has its own WAL and page cache, so its commits neither lock nor evict the others'
   * pages; queries name tables unqualified and SQLite finds them in whichever file holds them.
   */
  readonly attach?: Readonly<Record<string, string>>;
}

/** Opens the configured database and brings its schema up to date with `migrations`. */
export async function openStore(config: Config, options: StoreOptions): Promise<Store> {
  return config.database.url
    ? openPostgresStore(config, options.migrations)
    : openSqliteStore(config, options.migrations, options.attach ?? {});
}

async function openSqliteStore(
  config: Config,
  migrations: Migrations,
  attach: Readonly<Record<string, string>>,
): Promise<Store> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = new SQLite(join(config.dataDir, 'gatehouse.db'));
  // WAL lets the CLI read while a server writes. A writer in another process is waited out off the
  // event loop (WaitingSqliteDialect), never by SQLite's busy handler, which would block every request.
  // synchronous=FULL: an audit event acknowledged to a caller survives power loss, not just a crash.
  file.pragma('busy_timeout = 5000');
  file.pragma('journal_mode = WAL');
  file.pragma('busy_timeout = 0');
  file.pragma('synchronous = FULL');
  for (const [schema, name] of Object.entries(attach)) {
    file.prepare('attach database ? as ?').run(join(config.dataDir, name), schema);
    file.pragma(`${schema}.journal_mode = WAL`);
    file.pragma(`${schema}.synchronous = FULL`);
  }
  const db = new Kysely<Database>({
    dialect: new WaitingSqliteDialect(
      { database: reusingStatements(file) },
      lockWaitMs,
      () => file.inTransaction,
    ),
  });
  await migrateToLatest(db, migrations);
  return {
    db,
    kind: 'sqlite',
    async ping() {
      await sql`select 1`.execute(db);
    },
    exclusive: (_name, work) => work(),
    async close() {
      await db.destroy();
    },
  };
}

async function openPostgresStore(config: Config, migrations: Migrations): Promise<Store> {
  const options: PostgresOptions = {
    url: config.database.url as string,
    poolSize: config.database.poolSize,
    statementTimeoutMs: config.database.statementTimeoutMs,
    ...(config.database.tls && { tls: config.database.tls }),
  };
  const { openPostgres, withAdvisoryLock } = await import('./postgres.js');
  const backend = await openPostgres(options);
  const { db } = backend;
  try {
    // The first node to start migrates; the others wait for it, then find nothing left to do.
    await withAdvisoryLock(db, 'migrate', () => migrateToLatest(db, migrations));
  } catch (error) {
    await backend.end();
    throw error;
  }
  return {
    db,
    kind: 'postgres',
    async ping() {
      await sql`select 1`.execute(db);
    },
    exclusive: (name, work) => withAdvisoryLock(db, name, work),
    close: () => backend.end(),
  };
}

/**
 * A dedicated PostgreSQL connection to the database `db` was opened on (see Session). `name` shows in
 * pg_stat_activity.application_name, so an operator sees which process holds what.
 */
export async function openSession(
  db: Db,
  name: string,
  settings: { idleSessionTimeoutMs?: number } = {},
): Promise<Session> {
  const { openPostgresSession, backendOf } = await import('./postgres.js');
  const backend = backendOf(db);
  if (!backend) throw new TypeError('openSession needs a Db opened by openStore on PostgreSQL');
  return openPostgresSession(backend, `${name} pid=${process.pid}`, settings);
}

/** Tries for a session-level advisory lock on the connection behind `db` (a Session's): true when held. */
export async function tryAdvisoryLock(db: Db, name: string): Promise<boolean> {
  const { lockKey } = await import('./postgres.js');
  const { rows } = await sql<{
    locked: boolean;
  }>`select pg_try_advisory_lock(${lockKey(name)}::bigint) as locked`.execute(db);
  return rows[0]?.locked === true;
}

/** Gives back a session-level advisory lock taken with tryAdvisoryLock on the same connection. */
export async function releaseAdvisoryLock(db: Db, name: string): Promise<void> {
  const { lockKey } = await import('./postgres.js');
  await sql`select pg_advisory_unlock(${lockKey(name)}::bigint)`.execute(db);
}

/**
 * Inside a write transaction that inserts into an ever-growing sequence (token revocations), makes the
 * rows commit in sequence order: on PostgreSQL a transaction-level advisory lock, so a reader paging by
 * `seq > last` never skips a row whose transaction committed after a later one's. SQLite already
 * serializes writers.
 */
export async function lockSequence(trx: Db, name: string): Promise<void> {
  if (storeKindOf(trx) !== 'postgres') return;
  const { lockKey } = await import('./postgres.js');
  await sql`select pg_advisory_xact_lock(${lockKey(name)}::bigint)`.execute(trx);
}

async function migrateToLatest(db: Db, migrations: Migrations): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', `database migration ${failed} failed`, {
      cause: error,
    });
  }
}
