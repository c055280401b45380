import type SQLite from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/** Distinct statements kept; queries differ mostly by their shape, not their values, so few are live. */
const maxStatements = 500;

/**
 * The SQL text the kept statements may add up to. A prepared statement's native memory grows with its
 * text (about 36 bytes a character measured here), and batch inserts have one text per row count: a
 * log's group commits of 1 to 1,000 events each kept a statement of their own and held hundreds of MB
 * that no JavaScript heap shows. About 7 MB of statements at this bound; a larger text is prepared
 * afresh each time, which a batch of that size amortises.
 */
export const maxStatementChars = 200_000;

/**
 * The SQLite file as Kysely's dialect sees it, with prepared statements reused: Kysely prepares every
 * query afresh, which costs as much as running a simple indexed read. Statements are kept by their SQL
 * text, least recently used first out, within maxStatements and maxStatementChars. Safe because Kysely
 * runs one query at a time on this one connection, so no cached statement is ever used by two queries at
 * once.
 */
export function reusingStatements(file: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  let chars = 0;
  return {
    close: () => file.close(),
    prepare(sql) {
      const kept = cache.get(sql);
      if (kept) {
        cache.delete(sql);
        cache.set(sql, kept);
        return kept;
      }
      const statement = file.prepare(sql);
      if (sql.length > maxStatementChars) return statement;
      cache.set(sql, statement);
      chars += sql.length;
      for (const oldest of cache.keys()) {
        if (cache.size <= maxStatements && chars <= maxStatementChars) break;
        cache.delete(oldest);
        chars -= oldest.length;
      }
      return statement;
    },
  };
}
