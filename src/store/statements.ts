import type SQLite from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/** Distinct statements kept; queries differ mostly by their shape, not their values, so few are live. */
const maxStatements = 500;

/**
 * The SQLite file as Kysely's dialect sees it, with prepared statements reused: Kysely prepares every
 * query afresh, which costs as much as running a simple indexed read. Statements are kept by their SQL
 * text, least recently used first out. Safe because Kysely runs one query at a time on this one
 * connection, so no cached statement is ever used by two queries at once.
 */
export function reusingStatements(file: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => file.close(),
    prepare(sql) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = file.prepare(sql);
        if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}
