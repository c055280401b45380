/**
 * The witness's own small store (SQLite): per log origin, the latest checkpoint it cosigned. The check
 * against it and the update run in one synchronous transaction, so two submissions can never roll the
 * recorded size back (c2sp.org/tlog-witness, add-checkpoint).
 */
import SQLite from 'better-sqlite3';

export interface Witnessed {
  readonly size: number;
  readonly root: Buffer;
}

export interface WitnessState {
  /** Runs `decide` on the origin's latest cosigned checkpoint; records `advance` when it answers one. */
  update<T>(origin: string, decide: (latest: Witnessed | undefined) => { advance?: Witnessed; result: T }): T;
  close(): void;
}

export function openWitnessState(file: string): WitnessState {
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'create table if not exists witnessed (origin text primary key, size integer not null, root blob not null, updated_at text not null)',
  );
  const read = db.prepare<[string], { size: number; root: Buffer }>(
    'select size, root from witnessed where origin = ?',
  );
  const write = db.prepare(
    'insert into witnessed (origin, size, root, updated_at) values (?, ?, ?, ?) on conflict (origin) do update set size = excluded.size, root = excluded.root, updated_at = excluded.updated_at',
  );
  return {
    update(origin, decide) {
      return db
        .transaction(() => {
          const row = read.get(origin);
          const { advance, result } = decide(row && { size: Number(row.size), root: row.root });
          if (advance) write.run(origin, advance.size, advance.root, new Date().toISOString());
          return result;
        })
        .immediate();
    },
    close: () => db.close(),
  };
}
