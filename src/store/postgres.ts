import { readFileSync } from 'node:fs';
/**
 * The PostgreSQL backend: a connection pool behind Kysely's PostgresDialect, typed results that match
 * SQLite's (bigint and numeric as numbers), cluster-wide advisory locks, and dedicated sessions for the
 * audit sequencer (LISTEN/NOTIFY and a lock held for as long as the connection lives).
 */
import { createHash } from 'node:crypto';
import {
  Kysely,
  PostgresDialect,
  sql,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PostgresPool,
  type PostgresPoolClient,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';
import pg from 'pg';
import { DependencyUnavailable } from '../errors/index.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

export interface PostgresOptions {
  url: string;
  poolSize: number;
  statementTimeoutMs: number;
  /** TLS to the server with its certificate verified (against `ca`, a PEM file, or the system's CAs). */
  tls?: { ca?: string };
}

const int8 = 20;
const numeric = 1700;

/**
 * bigint and numeric arrive from pg as text (they may not fit a double). Every bigint Gatehouse keeps
 * (log indexes, epoch seconds, counts) is far below 2^53, and numeric appears only as the result of
 * sums and averages of double-precision columns, so both are answered as numbers, as SQLite does.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === int8 || oid === numeric) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

/** Where a URL points, for messages: host, port and database, never the user or password. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'the configured server';
  }
}

function clientConfig(options: PostgresOptions, applicationName: string): pg.ClientConfig {
  return {
    connectionString: options.url,
    application_name: applicationName,
    statement_timeout: options.statementTimeoutMs,
    // A session left inside a transaction (a paused or wedged process) must not hold rows or locks forever.
    idle_in_transaction_session_timeout: Math.max(60_000, options.statementTimeoutMs * 2),
    connectionTimeoutMillis: 5000,
    keepAlive: true,
    types,
    ...(options.tls && {
      ssl: {
        rejectUnauthorized: true,
        ...(options.tls.ca !== undefined && { ca: readFileSync(options.tls.ca) }),
      },
    }),
  };
}

/**
 * Rides along in every Kysely of a PostgreSQL store (plugins survive withPlugin and transactions), so
 * code holding any of them can open a session to the same database, and closing the store closes
 * those sessions too.
 */
class PostgresBackend implements KyselyPlugin {
  readonly sessions = new Set<Session>();
  db!: Db;
  /** Once the store is closed, no new session opens on it either. */
  closed = false;

  constructor(readonly options: PostgresOptions) {}

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }

  async end(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.sessions].map((session) => session.close()));
    await this.db.destroy();
  }
}

export type { PostgresBackend };

/** The backend a Kysely of a PostgreSQL store belongs to. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only the plugins are read
export function backendOf(db: Kysely<any>): PostgresBackend | undefined {
  return db.getExecutor().plugins.find((p): p is PostgresBackend => p instanceof PostgresBackend);
}

/** A pool (opened lazily by pg) and the Kysely over it; answers once one connection has succeeded. */
export async function openPostgres(options: PostgresOptions): Promise<PostgresBackend> {
  const pool = new pg.Pool({
    ...clientConfig(options, `gatehouse pid=${process.pid}`),
    max: options.poolSize,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection that breaks (a server restart) is dropped from the pool; the next query reconnects.
  pool.on('error', () => undefined);
  // pg-pool listens for errors only on idle clients: one that breaks while checked out (inside a
  // transaction, between statements) would emit an unhandled 'error' and end the process. Its next query
  // fails instead, and the pool discards it on release.
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    const client = await pool.connect();
    client.release();
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      `database.url: cannot connect to PostgreSQL at ${describeUrl(options.url)} (${reasonOf(cause)}); check the URL and that the server is up`,
      { cause },
    );
  }
  const backend = new PostgresBackend(options);
  backend.db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: unavailableWhenUnreachable(pool) }),
    plugins: [backend],
  });
  return backend;
}

/**
 * The pool, with every failure to reach PostgreSQL (refused, reset, terminated, shut down) turned into
 * DependencyUnavailable: requests that need the database answer 503 while it is away, and work again
 * when it returns, with new connections.
 */
function unavailableWhenUnreachable(pool: pg.Pool): PostgresPool {
  const guarded = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const names = new StatementNames();
  const guard = (client: pg.PoolClient): PostgresPoolClient => {
    let found = guarded.get(client);
    if (!found) {
      const query = namedQuery(client, names);
      found = {
        query: ((...args: unknown[]) => {
          const result = query(...args);
          // A cursor (streamed query) is not a promise; its errors arrive on the cursor.
          return result instanceof Promise ? result.catch(rethrowUnreachable) : result;
        }) as PostgresPoolClient['query'],
        release: (destroy?: boolean) => client.release(destroy),
      };
      guarded.set(client, found);
    }
    return found;
  };
  return {
    connect: async () => guard(await pool.connect().catch(rethrowUnreachable)),
    end: () => pool.end(),
  };
}

/** Runs of one statement's text before it is prepared under a name. */
const runsBeforeNaming = 3;
/** At most this many texts are ever named (each connection keeps each one it runs); the rest run unnamed. */
const maxNamed = 200;
/** Texts counted towards naming at once; the count starts over when it fills (texts built per call). */
const maxCounted = 1000;

/**
 * Names the statements this process runs again and again, so that a connection parses and plans each
 * one once (a named prepared statement) instead of on every run: a one-row read by key costs PostgreSQL
 * a third of the CPU that way. Kysely's statements take their values as parameters, so a hot text is
 * one statement, whatever the values.
 */
class StatementNames {
  readonly #counted = new Map<string, number>();
  readonly #named = new Map<string, string>();
  /** Texts whose prepared form the server refused (a table changed under it): unnamed from then on. */
  readonly #retired = new Set<string>();

  nameOf(text: string): string | undefined {
    const named = this.#named.get(text);
    if (named !== undefined || this.#named.size >= maxNamed || this.#retired.has(text)) return named;
    const runs = (this.#counted.get(text) ?? 0) + 1;
    if (runs < runsBeforeNaming) {
      if (this.#counted.size >= maxCounted) this.#counted.clear();
      this.#counted.set(text, runs);
      return undefined;
    }
    this.#counted.delete(text);
    const name = `gatehouse_${this.#named.size + this.#retired.size}`;
    this.#named.set(text, name);
    return name;
  }

  retire(text: string): void {
    this.#named.delete(text);
    this.#retired.add(text);
  }
}

/** SQLSTATE of "cached plan must not change result type": a prepared statement over a changed table. */
const planChanged = '0A000';

/** The client's query, with hot texts run as named prepared statements (see StatementNames). */
function namedQuery(client: pg.ClientBase, names: StatementNames): (...args: unknown[]) => unknown {
  const plain = client.query.bind(client) as (...args: unknown[]) => unknown;
  return (...args) => {
    const [text, values] = args;
    // Only statements with values: the rest (begin, commit, constant reads) go by the simple protocol.
    const name =
      typeof text === 'string' && args.length === 2 && Array.isArray(values) && values.length > 0
        ? names.nameOf(text)
        : undefined;
    if (name === undefined) return plain(...args);
    return client
      .query({ name, text: text as string, values: values as unknown[] | undefined })
      .catch((error: unknown) => {
        // Refused before it ran (a migration changed the table under the prepared plan): run it unnamed.
        const { code, message } = error as { code?: unknown; message?: unknown };
        if (code !== planChanged || !/cached plan/.test(String(message))) throw error;
        names.retire(text as string);
        return plain(...args);
      });
  };
}

/** SQLSTATE classes and socket codes that mean "PostgreSQL is not there", not "this query is wrong". */
const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  '57P01',
  '57P02',
  '57P03',
]);

function isUnreachable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (unreachableCodes.has(code) || code.startsWith('08'))) return true;
  return (
    typeof message === 'string' &&
    /Connection terminated|not queryable|timeout exceeded when trying to connect|Connection ended/i.test(
      message,
    )
  );
}

function rethrowUnreachable(error: unknown): never {
  if (!isUnreachable(error)) throw error;
  throw new DependencyUnavailable(
    'DEPENDENCY_UNAVAILABLE',
    'the database cannot be reached, so the request was refused; retry shortly',
    { cause: error },
  );
}

function reasonOf(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && code !== '') return code;
  // pg's messages name the server's complaint (a missing database, a refused login), never the password.
  return typeof message === 'string' ? message.split('\n')[0] : 'unknown error';
}

/** The 64-bit advisory lock key of a lock name: stable across nodes and versions. */
export function lockKey(name: string): string {
  return createHash('sha256').update(`gatehouse:${name}`).digest().readBigInt64BE(0).toString();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` while this process holds the named session-level advisory lock, which every node of the
 * database shares: migration and demo seeding happen once however many nodes start together. The lock
 * is tried, not waited on, so no statement outlives the statement timeout while another node works.
 */
export async function withAdvisoryLock<T>(
  db: Db,
  name: string,
  work: () => Promise<T>,
  options: { waitMs?: number } = {},
): Promise<T> {
  const key = lockKey(name);
  const deadline = Date.now() + (options.waitMs ?? 300_000);
  return db.connection().execute(async (conn) => {
    for (let attempt = 0; ; attempt++) {
      const { rows } = await sql<{
        locked: boolean;
      }>`select pg_try_advisory_lock(${key}::bigint) as locked`.execute(conn);
      if (rows[0]?.locked) break;
      if (Date.now() >= deadline) {
        throw new DependencyUnavailable(
          'DEPENDENCY_UNAVAILABLE',
          `another Gatehouse node has held the ${name} lock for too long; check the other nodes, then start again`,
        );
      }
      await sleep(Math.min(50 * 2 ** attempt, 500));
    }
    try {
      return await work();
    } finally {
      await sql`select pg_advisory_unlock(${key}::bigint)`.execute(conn).catch(() => undefined);
    }
  });
}

/**
 * One dedicated connection, outside the pool: its transactions, session locks and LISTENs belong to it
 * alone. Used by the audit sequencer, whose leadership is a lock that lives exactly as long as this
 * connection: when the process dies, PostgreSQL ends the session and another node takes over.
 */
export interface Session {
  /** Kysely over this one connection. */
  readonly db: Db;
  /** LISTENs on `channel`; `onMessage` gets each NOTIFY payload. */
  listen(channel: string, onMessage: (payload: string) => void): Promise<void>;
  /** True until the connection breaks or is closed. */
  readonly alive: boolean;
  /** Called once when the connection breaks (not when it is closed). */
  onLost(listener: (error: unknown) => void): void;
  close(): Promise<void>;
}

export async function openPostgresSession(
  backend: PostgresBackend,
  applicationName: string,
  settings: { idleSessionTimeoutMs?: number } = {},
): Promise<Session> {
  if (backend.closed) throw new Error('the store is closed');
  const client = new pg.Client(clientConfig(backend.options, applicationName));
  const listeners = new Map<string, (payload: string) => void>();
  const lostListeners: Array<(error: unknown) => void> = [];
  let alive = true;
  let closing = false;
  const lost = (error: unknown) => {
    if (!alive) return;
    alive = false;
    if (closing) return;
    for (const listener of lostListeners.splice(0)) listener(error);
  };
  client.on('error', lost);
  client.on('end', () => lost(new Error('the database connection ended')));
  client.on('notification', (message) => listeners.get(message.channel)?.(message.payload ?? ''));
  await client.connect().catch(async (error: unknown) => {
    await client.end().catch(() => undefined);
    throw error;
  });
  if (settings.idleSessionTimeoutMs !== undefined) {
    // A process that stops answering (paused, wedged) loses the session, and with it any lock it held.
    // PostgreSQL 14+; older servers keep the session until the connection breaks.
    await client
      .query(`set idle_session_timeout = ${Math.trunc(settings.idleSessionTimeoutMs)}`)
      .catch(() => {
        /* unsupported before PostgreSQL 14 */
      });
  }
  const query = namedQuery(client, new StatementNames());
  const poolOfOne: PostgresPool = {
    connect: async () => {
      if (!alive) throw new Error('the database session is closed');
      const borrowed: PostgresPoolClient = {
        query: query as PostgresPoolClient['query'],
        release: () => undefined,
      };
      return borrowed;
    },
    end: async () => undefined,
  };
  const session: Session = {
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: poolOfOne }), plugins: [backend] }),
    get alive() {
      return alive;
    },
    async listen(channel, onMessage) {
      listeners.set(channel, onMessage);
      await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    },
    onLost(listener) {
      lostListeners.push(listener);
    },
    async close() {
      closing = true;
      alive = false;
      backend.sessions.delete(session);
      await client.end().catch(() => undefined);
    },
  };
  backend.sessions.add(session);
  return session;
}
