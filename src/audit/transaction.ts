/** SQLite write transactions for the audit log: BEGIN IMMEDIATE, waiting for the lock without blocking. */
import { sql } from 'kysely';
import type { Db } from '../store/index.js';

const lockWaitMs = 5000;

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
 * for asynchronously, with the connection released in between.
 */
export async function immediateTransaction<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  const deadline = Date.now() + lockWaitMs;
  for (let attempt = 0; ; attempt++) {
    const outcome = await db.connection().execute(async (conn) => {
      if (!(await tryBegin(db, conn))) return busy;
      try {
        const result = await work(conn);
        await sql`commit`.execute(conn);
        return { result };
      } catch (error) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw error;
      }
    });
    if (outcome !== busy) return outcome.result;
    if (Date.now() >= deadline) {
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
