import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type MigrationProvider } from 'kysely';
import type { Config } from '../config/index.js';
import { ConfigError, DependencyUnavailable } from '../errors/index.js';
import { migrations } from './migrations.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface Store {
  readonly db: Db;
  readonly kind: 'sqlite';
  /** Cheap liveness query for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const staticMigrations: MigrationProvider = { getMigrations: async () => migrations };

/** Opens the configured database and brings its schema up to date. */
export async function openStore(config: Config): Promise<Store> {
  if (config.database.url) {
    throw new ConfigError(
      'config: database.url: the PostgreSQL backend is not available in this build; remove database.url to use SQLite',
    );
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = new SQLite(join(config.dataDir, 'gatehouse.db'));
  // WAL lets the CLI read while a server writes; busy_timeout waits out a writer instead of failing.
  // synchronous=FULL: an audit event acknowledged to a caller survives power loss, not just a crash.
  file.pragma('journal_mode = WAL');
  file.pragma('busy_timeout = 5000');
  file.pragma('synchronous = FULL');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: file }) });
  await migrateToLatest(db);
  return {
    db,
    kind: 'sqlite',
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}

async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: staticMigrations });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', `database migration ${failed} failed`, {
      cause: error,
    });
  }
}
