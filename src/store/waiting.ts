/**
 * SQLite without blocking the event loop: better-sqlite3 is synchronous, so SQLite's own busy handler
 * (busy_timeout) would freeze every request while another process holds the write lock. The connection
 * runs with busy_timeout = 0; a statement refused as busy is tried again after an asynchronous pause,
 * until a bound, then refused with 503 DATABASE_BUSY.
 */
import {
  SqliteDialect,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { DependencyUnavailable } from '../errors/index.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Runs `statement` until it is not refused as busy, pausing off the event loop, for at most `waitMs`. */
async function untilNotBusy<T>(statement: () => Promise<T>, waitMs: number): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if (!isBusy(error)) throw error;
      if (Date.now() >= deadline) {
        throw new DependencyUnavailable(
          'DATABASE_BUSY',
          'the database is locked by another process, so the request was refused; retry shortly',
          { cause: error },
        );
      }
      await sleep(Math.min(2 ** attempt, 25));
    }
  }
}

class WaitingConnection implements DatabaseConnection {
  constructor(
    private readonly inner: DatabaseConnection,
    private readonly waitMs: number,
  ) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return untilNotBusy(() => this.inner.executeQuery<R>(query), this.waitMs);
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/** The SQLite driver, its one connection wrapped: transactions go through the wrapper too. */
class WaitingDriver implements Driver {
  #connection: WaitingConnection | undefined;

  constructor(
    private readonly inner: Driver,
    private readonly waitMs: number,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.inner.acquireConnection();
    this.#connection ??= new WaitingConnection(connection, this.waitMs);
    return this.#connection;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(connection);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** SqliteDialect whose statements wait for the write lock off the event loop, up to `waitMs`. */
export class WaitingSqliteDialect extends SqliteDialect {
  constructor(
    config: ConstructorParameters<typeof SqliteDialect>[0],
    private readonly waitMs: number,
  ) {
    super(config);
  }

  override createDriver(): Driver {
    return new WaitingDriver(super.createDriver(), this.waitMs);
  }
}
