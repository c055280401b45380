import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../store/index.js';
import { immediateTransaction, releaseWal } from './transaction.js';

describe('immediateTransaction with the fsync off the event loop', () => {
  let dir: string;
  let file: string;
  let db: Db;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-trx-'));
    file = join(dir, 'test.db');
    const handle = new SQLite(file);
    handle.pragma('journal_mode = WAL');
    handle.pragma('synchronous = FULL');
    db = new Kysely({ dialect: new SqliteDialect({ database: handle }) }) as unknown as Db;
    await sql`create table t (v text)`.execute(db);
  });

  afterEach(async () => {
    await releaseWal(db);
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const level = async (on: Db) =>
    (await sql<{ synchronous: number }>`pragma synchronous`.execute(on)).rows[0]?.synchronous;

  it('commits at synchronous=NORMAL, answers after syncing the WAL, and restores FULL', async () => {
    let inside: number | undefined;
    await immediateTransaction(
      db,
      async (trx) => {
        inside = await level(trx);
        await sql`insert into t (v) values ('a')`.execute(trx);
      },
      { syncOffLoop: true },
    );
    expect(inside).toBe(1);
    expect(await level(db)).toBe(2);
    const other = new SQLite(file, { readonly: true });
    expect(other.prepare('select v from t').all()).toEqual([{ v: 'a' }]);
    other.close();
  });

  it('restores FULL when the work fails, and rolls the work back', async () => {
    const failure = await immediateTransaction(
      db,
      async (trx) => {
        await sql`insert into t (v) values ('b')`.execute(trx);
        throw new Error('boom');
      },
      { syncOffLoop: true },
    ).catch((error: unknown) => error);
    expect(failure).toMatchObject({ message: 'boom' });
    expect(await level(db)).toBe(2);
    expect((await sql`select v from t`.execute(db)).rows).toEqual([]);
  });

  it('waits out another writer without blocking, at FULL in between', async () => {
    const other = new SQLite(file);
    other.exec('begin immediate');
    let done = false;
    const pending = immediateTransaction(
      db,
      async (trx) => {
        await sql`insert into t (v) values ('c')`.execute(trx);
      },
      { syncOffLoop: true },
    ).then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    expect(await level(db)).toBe(2);
    other.exec('commit');
    other.close();
    await pending;
    expect((await sql`select v from t`.execute(db)).rows).toEqual([{ v: 'c' }]);
  });
});
