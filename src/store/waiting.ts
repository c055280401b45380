/**
 * SQLite without blocking the event loop: better-sqlite3 is synchronous, so SQLite's own busy handler
 * (busy_timeout) would freeze every request while another process holds the write lock. The connection
 * runs with busy_timeout = 0; a statement refused as busy is tried again after an asynchronous pause,
 * until a bound, then refused with 503 DATABASE_BUSY.
 *
 * The pause gives the one connection back: in WAL mode another process's write lock never blocks
 * readers, so reads (the revocation poll, CRM reads) go on while a write waits, instead of queueing
 * behind it and going stale. A transaction cannot give its connection back, so transactions take the
 * write lock when they begin (BEGIN IMMEDIATE, waited for the same way) and never meet it inside.
 */
import { CompiledQuery, SqliteDialect, type DatabaseConnection, type Driver, type QueryResult } from 'kysely';
import { DependencyUnavailable } from '../errors/index.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** A caller that opens its own transaction (`begin immediate`) waits for the lock itself. */
const opensTransaction = (query: CompiledQuery) => /^\s*begin\b/i.test(query.sql);

function lockedOut(cause: unknown): DependencyUnavailable {
  return new DependencyUnavailable(
    'DATABASE_BUSY',
    'the database is locked by another process, so the request was refused; retry shortly',
    { cause },
  );
}

/**
 * Runs `statement` until it is not refused as busy, for at most `waitMs`; between tries `pause` waits
 * off the event loop (giving the connection back when it can).
 */
async function untilNotBusy<T>(
  statement: () => Promise<T>,
  waitMs: number,
  pause: (ms: number) => Promise<void>,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if (!isBusy(error)) throw error;
      if (Date.now() >= deadline) throw lockedOut(error);
      await pause(Math.min(2 ** attempt, 25));
    }
  }
}

class WaitingConnection implements DatabaseConnection {
  constructor(
    private readonly inner: DatabaseConnection,
    private readonly driver: WaitingDriver,
  ) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (opensTransaction(query)) return this.inner.executeQuery<R>(query);
    return untilNotBusy(
      () => this.inner.executeQuery<R>(query),
      this.driver.waitMs,
      (ms) => this.driver.pause(ms),
    );
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/** The SQLite driver, its one connection wrapped: transactions go through the wrapper too. */
class WaitingDriver implements Driver {
  #connection: WaitingConnection | undefined;
  #inner: DatabaseConnection | undefined;

  constructor(
    private readonly driver: Driver,
    readonly waitMs: number,
    private readonly inTransaction: () => boolean,
  ) {}

  init(): Promise<void> {
    return this.driver.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.driver.acquireConnection();
    this.#inner = connection;
    this.#connection ??= new WaitingConnection(connection, this);
    return this.#connection;
  }

  /**
   * Waits `ms` off the event loop. Outside a transaction the connection is given back meanwhile (and
   * taken again after), so other statements run; inside one it is kept, as the transaction needs it.
   */
  async pause(ms: number): Promise<void> {
    const inner = this.#inner;
    if (inner === undefined || this.inTransaction()) return sleep(ms);
    await this.driver.releaseConnection(inner);
    await sleep(ms);
    await this.driver.acquireConnection();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await untilNotBusy(
      () => (connection as WaitingConnection).executeQuery(CompiledQuery.raw('begin immediate')),
      this.waitMs,
      (ms) => this.pause(ms),
    );
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.driver.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.driver.rollbackTransaction(connection);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.driver.releaseConnection(connection);
  }

  destroy(): Promise<void> {
    return this.driver.destroy();
  }
}

/** SqliteDialect whose statements wait for the write lock off the event loop, up to `waitMs`. */
export class WaitingSqliteDialect extends SqliteDialect {
  constructor(
    config: ConstructorParameters<typeof SqliteDialect>[0],
    private readonly waitMs: number,
    private readonly inTransaction: () => boolean,
  ) {
    super(config);
  }

  override createDriver(): Driver {
    return new WaitingDriver(super.createDriver(), this.waitMs, this.inTransaction);
  }
}
