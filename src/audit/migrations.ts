import { sql, type Kysely, type Migration } from 'kysely';
import { DependencyUnavailable } from '../errors/index.js';
import { storeKindOf, type Db } from '../store/index.js';
import { auditFile } from './log-file.js';
import { appendLeaf, emptyRange, rangeRoot } from './merkle.js';
import { immediateTransaction } from './transaction.js';

/**
 * The audit module's tables (audit_*), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const auditMigrations: Record<string, Migration> = {
  '001_initial': {
    // The audit's part of the first migration, which created every module's first tables at once.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_events')
        .addColumn('idx', 'bigint', (c) => c.primaryKey())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('leaf_hash', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_events_request_id')
        .on('audit_events')
        .column('request_id')
        .execute();
      await db.schema
        .createIndex('audit_events_app_id')
        .on('audit_events')
        .columns(['app_id', 'idx'])
        .execute();
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('size', 'bigint', (c) => c.primaryKey())
        .addColumn('root_hash', 'text', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_nodes')
        .addColumn('level', 'integer', (c) => c.notNull())
        .addColumn('idx', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_nodes_pk', ['level', 'idx'])
        .execute();
    },
  },
  '009_audit_queue': {
    async up(db: Kysely<unknown>) {
      // Leaves waiting for the audit sequencer (PostgreSQL, many nodes; src/audit/sequencer.ts). A node
      // inserts its events here and waits; the one sequencer gives each its index in the log, and the
      // node learns it from `idx`. Integrated rows are deleted after a minute.
      await db.schema
        .createTable('audit_queue')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('queued_at', 'text', (c) => c.notNull())
        .addColumn('idx', 'bigint')
        .addColumn('integrated_at', 'text')
        .execute();
      await db.schema
        .createIndex('audit_queue_pending')
        .on('audit_queue')
        .columns(['idx', 'queued_at', 'id'])
        .execute();
    },
  },
  '025_audit_cosignatures': {
    async up(db: Kysely<unknown>) {
      // Witness cosignatures of audit checkpoints, one per checkpoint size and witness (src/audit).
      await db.schema
        .createTable('audit_cosignatures')
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('witness', 'text', (c) => c.notNull())
        .addColumn('line', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_cosignatures_pk', ['size', 'witness'])
        .execute();
    },
  },
  '031_audit_queue_pending_only': {
    async up(db: Kysely<unknown>) {
      // The sequencer deletes a queue row in the write that integrates it (rewriting it with its index
      // cost PostgreSQL most of its time per batch); a node finds its event's index in audit_events.
      // Rows integrated before are done with; pending ones stay, in the same order.
      if (storeKindOf(db) === 'postgres') {
        await sql`delete from audit_queue where idx is not null`.execute(db);
        await db.schema.dropIndex('audit_queue_pending').execute();
        await db.schema.alterTable('audit_queue').dropColumn('idx').dropColumn('integrated_at').execute();
        await db.schema
          .createIndex('audit_queue_order')
          .on('audit_queue')
          .columns(['queued_at', 'id'])
          .execute();
        return;
      }
      // SQLite never queues: the same columns go, in whichever file holds the table (the move may be
      // half done, with a copy in each).
      const { rows } = await sql<{ name: string }>`pragma database_list`.execute(db);
      for (const { name } of rows) {
        const master = sql.table(`${name}.sqlite_master`);
        const { rows: found } = await sql<{ n: number }>`
          select count(*) as n from ${master} where type = 'table' and name = 'audit_queue'`.execute(db);
        if (found[0]?.n !== 1) continue;
        await sql`drop index ${sql.table(`${name}.audit_queue_pending`)}`.execute(db);
        await sql`alter table ${sql.table(`${name}.audit_queue`)} drop column idx`.execute(db);
        await sql`alter table ${sql.table(`${name}.audit_queue`)} drop column integrated_at`.execute(db);
      }
    },
  },
};

export { auditFile } from './log-file.js';

/** How long the move waits for another process (serve --workers) that is moving or using the log. */
const moveWaitMs = 60_000;

/**
 * SQLite: moves the audit tables out of gatehouse.db into the attached audit file, once, in two commits
 * that each change one file (a commit that spans two WAL files is not atomic on a crash):
 * 1. copy every audit_* table and index into the audit file, gatehouse.db unchanged;
 * 2. check the copy (the same rows; the same event count and Merkle root), then drop the originals.
 * A crash after 1 leaves two equal copies and the next start finishes 2. Two copies that differ, or no
 * log in either file (audit.db lost), are refused: there is never a second log, nor a silently new one.
 * A later migration that adds an audit table must create it in the audit file (schema `audit` on SQLite):
 * one created unqualified lands in gatehouse.db, and the two files then differ.
 */
const auditTablesOfBoth = (trx: Db) =>
  Promise.all([auditTables(trx, 'main'), auditTables(trx, auditFile.schema)]);

export async function moveAuditLogToItsFile(db: Db): Promise<void> {
  const { rows } = await sql<{ name: string; file: string }>`pragma database_list`.execute(db);
  const main = rows.find((row) => row.name === 'main')?.file ?? '';
  const file = rows.find((row) => row.name === auditFile.schema)?.file;
  if (file === undefined) return;
  const deadline = performance.now() + moveWaitMs;
  await immediateTransaction(
    db,
    async (trx) => {
      const [inMain, inFile] = await auditTablesOfBoth(trx);
      if (inMain.length === 0) {
        if (inFile.length === 0) throw lostLog(file);
        return;
      }
      if (inFile.length === 0) return copyAuditTables(trx);
      await assertSameLog(trx, inMain, inFile, main, file);
    },
    { deadline },
  );
  await immediateTransaction(
    db,
    async (trx) => {
      const [inMain, inFile] = await auditTablesOfBoth(trx);
      if (inMain.length === 0) return;
      await assertSameLog(trx, inMain, inFile, main, file);
      for (const table of inMain) await sql`drop table ${sql.table(`main.${table}`)}`.execute(trx);
    },
    { deadline },
  );
}

/** The audit module's tables in `schema`, by name. */
async function auditTables(db: Db, schema: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select name from ${sql.table(`${schema}.sqlite_master`)}
    where type = 'table' and name like 'audit!_%' escape '!' order by name`.execute(db);
  return rows.map((row) => row.name);
}

/** Creates each audit table and index in the audit file by the DDL gatehouse.db recorded, and copies the rows. */
async function copyAuditTables(trx: Db): Promise<void> {
  const { rows } = await sql<{ type: string; name: string; sql: string }>`
    select type, name, sql from main.sqlite_master
    where tbl_name like 'audit!_%' escape '!' and sql is not null
    order by type = 'index', name`.execute(trx);
  for (const row of rows) {
    const ddl = row.sql.replace(
      /^(\s*create\s+(?:unique\s+)?(?:table|index)\s+)("[^"]+"|\w+)/i,
      `$1"${auditFile.schema}".$2`,
    );
    if (ddl === row.sql)
      throw new TypeError(`cannot place ${row.type} ${row.name} in the audit file: ${row.sql}`);
    await sql.raw(ddl).execute(trx);
  }
  for (const row of rows.filter((r) => r.type === 'table')) {
    await sql`insert into ${sql.table(`${auditFile.schema}.${row.name}`)} select * from ${sql.table(`main.${row.name}`)}`.execute(
      trx,
    );
  }
}

/** Refuses unless both files hold the same tables with the same rows, and so the same log. */
async function assertSameLog(
  trx: Db,
  inMain: readonly string[],
  inFile: readonly string[],
  main: string,
  file: string,
): Promise<void> {
  const differ = (what: string) =>
    new DependencyUnavailable(
      'AUDIT_LOG_DAMAGED',
      `both ${main} and ${file} hold an audit log and they differ (${what}): keep the one that belongs ` +
        `with this data dir (restore both files from one backup), never both`,
    );
  if (inMain.join() !== inFile.join())
    throw differ(`tables ${inMain.join(', ')} against ${inFile.join(', ')}`);
  for (const table of inMain) {
    const [here, there] = [sql.table(`main.${table}`), sql.table(`${auditFile.schema}.${table}`)];
    const { rows } = await sql<{ count: number; only: number }>`
      select (select count(*) from ${here}) - (select count(*) from ${there}) as count,
        (select count(*) from (select * from ${here} except select * from ${there})) as only`.execute(trx);
    if (rows[0]?.count !== 0 || rows[0]?.only !== 0) throw differ(`rows of ${table}`);
  }
  const [before, after] = await Promise.all([storedRoot(trx, 'main'), storedRoot(trx, auditFile.schema)]);
  if (before.size !== after.size || before.root !== after.root) throw differ('event count or Merkle root');
}

/** The event count and the Merkle root (RFC 6962) over the leaf hashes stored in `schema`, in index order. */
async function storedRoot(db: Db, schema: string): Promise<{ size: number; root: string }> {
  let range = emptyRange;
  for (let after = -1; ;) {
    const { rows } = await sql<{ idx: number; leaf_hash: string }>`
      select idx, leaf_hash from ${sql.table(`${schema}.audit_events`)}
      where idx > ${after} order by idx limit 10000`.execute(db);
    if (rows.length === 0) return { size: range.size, root: rangeRoot(range).toString('hex') };
    for (const row of rows) range = appendLeaf(range, Buffer.from(row.leaf_hash, 'hex'));
    after = Number(rows[rows.length - 1]?.idx);
  }
}

function lostLog(file: string): DependencyUnavailable {
  return new DependencyUnavailable(
    'AUDIT_UNAVAILABLE',
    `the audit log file ${file} is missing or empty and gatehouse.db no longer holds the log (moved there ` +
      'before): restore audit.db with gatehouse.db from one backup',
  );
}
