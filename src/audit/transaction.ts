/** SQLite write transactions for the audit log: BEGIN IMMEDIATE, waiting for the lock without blocking. */
import { open, type FileHandle } from 'node:fs/promises';
import { sql } from 'kysely';
import type { Db } from '../store/index.js';
import { logFileOf } from './log-file.js';

/** How long a write waits for another writer's lock before it is refused. */
export const lockWaitMs = 5000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

const busy = Symbol('busy');

/**
 * Runs `work` in one IMMEDIATE transaction, so its reads (the next index) and writes are atomic across
 * processes sharing the file. better-sqlite3 is synchronous: its busy handler would block the event loop
 * while another process (or connection) holds the write lock, so the lock is tried without it and waited
 * for asynchronously, with the connection released in between. `deadline` (performance.now() time)
 * bounds the wait; by default lockWaitMs from now.
 *
 * `syncOffLoop` (a WAL database): the commit is as durable as with synchronous=FULL when the promise
 * resolves, but the fsync of the WAL (milliseconds, on the event loop inside better-sqlite3) runs on
 * libuv's thread pool after the connection is released, so requests go on being served meanwhile. The
 * commit itself runs at synchronous=NORMAL, which in WAL mode never risks corruption, only the loss of
 * the last commits on power failure: exactly the ones this promise has not yet confirmed. Another
 * writer's FULL commit syncs the same WAL, so nothing confirmed earlier is ever left unsynced.
 */
export async function immediateTransaction<T>(
  db: Db,
  work: (trx: Db) => Promise<T>,
  options: { syncOffLoop?: boolean; deadline?: number } = {},
): Promise<T> {
  const deadline = options.deadline ?? performance.now() + lockWaitMs;
  const wal = options.syncOffLoop ? await walOf(db) : undefined;
  for (let attempt = 0; ; attempt++) {
    const outcome = await db.connection().execute(async (conn) => {
      if (wal) await sql.raw(`pragma ${wal.schema}.synchronous = NORMAL`).execute(conn);
      try {
        if (!(await tryBegin(db, conn))) return busy;
        try {
          const result = await work(conn);
          await sql`commit`.execute(conn);
          return { result };
        } catch (error) {
          await sql`rollback`.execute(conn).catch(() => undefined);
          throw error;
        }
      } finally {
        if (wal) await sql.raw(`pragma ${wal.schema}.synchronous = ${wal.synchronous}`).execute(conn);
      }
    });
    if (outcome !== busy) {
      if (wal) await syncFile(wal);
      return outcome.result;
    }
    if (performance.now() >= deadline) {
      throw Object.assign(new Error('the audit store stayed locked by another writer'), {
        code: 'SQLITE_BUSY',
      });
    }
    await sleep(Math.min(2 ** attempt, 25));
  }
}

/** The connection's own busy timeout, read once per database handle and restored after each try. */
const busyTimeouts = new WeakMap<Db, number>();

async function tryBegin(db: Db, conn: Db): Promise<boolean> {
  let timeout = busyTimeouts.get(db);
  if (timeout === undefined) {
    const { rows } = await sql<{ timeout: number }>`pragma busy_timeout`.execute(conn);
    timeout = Math.max(0, Math.trunc(Number(rows[0]?.timeout ?? 0)));
    busyTimeouts.set(db, timeout);
  }
  await sql`pragma busy_timeout = 0`.execute(conn);
  try {
    await sql`begin immediate`.execute(conn);
    return true;
  } catch (error) {
    if (isBusy(error)) return false;
    throw error;
  } finally {
    await sql.raw(`pragma busy_timeout = ${timeout}`).execute(conn);
  }
}

interface Wal {
  /** The schema of the file the audit log is in: the attached audit file, else the main one. */
  readonly schema: string;
  readonly path: string;
  /** The connection's own setting, restored after each commit. */
  readonly synchronous: number;
  handle?: FileHandle | undefined;
}

/**
 * The WAL of the audit log's file (the store's attached audit file, else the main one) and its
 * synchronous level; undefined when not in WAL mode.
 */
const wals = new WeakMap<Db, Wal | null>();

async function walOf(db: Db): Promise<Wal | undefined> {
  let wal = wals.get(db);
  if (wal === undefined) {
    const { rows: files } = await sql<{ name: string; file: string }>`pragma database_list`.execute(db);
    const { name: schema, file } = logFileOf(files) ?? { name: 'main', file: '' };
    const [mode, level] = await Promise.all([
      sql.raw<{ journal_mode: string }>(`pragma ${schema}.journal_mode`).execute(db),
      sql.raw<{ synchronous: number }>(`pragma ${schema}.synchronous`).execute(db),
    ]);
    wal =
      mode.rows[0]?.journal_mode === 'wal' && file !== ''
        ? {
            schema,
            path: `${file}-wal`,
            synchronous: Math.trunc(Number(level.rows[0]?.synchronous ?? 2)),
          }
        : null;
    wals.set(db, wal);
  }
  return wal ?? undefined;
}

/** Closes the WAL handle kept for `db`, if any; a later transaction opens it again. */
export async function releaseWal(db: Db): Promise<void> {
  const wal = wals.get(db);
  wals.delete(db);
  const handle = wal?.handle;
  if (wal) wal.handle = undefined;
  await handle?.close();
}

/**
 * fsync on the thread pool. The handle is kept: SQLite never replaces a WAL while a connection holds
 * it open, and this process's connection does until it closes; an error drops the handle, so the next
 * sync opens the file afresh.
 */
async function syncFile(wal: Wal): Promise<void> {
  const handle = (wal.handle ??= await open(wal.path, 'r'));
  try {
    await handle.sync();
  } catch (error) {
    wal.handle = undefined;
    await handle.close().catch(() => undefined);
    throw error;
  }
}
