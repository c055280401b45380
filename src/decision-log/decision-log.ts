import { randomUUID } from 'node:crypto';
import { CompiledQuery, SqliteAdapter, sql, type Kysely } from 'kysely';
import {
  DecisionReplay,
  parseRecordedInput,
  type PolicySet,
  type RecordedDecision,
  type RecordedInput,
  type RecordedSimulation,
  type RowCondition,
} from '../policy/index.js';

/**
 * The recorded runtime decisions (migration 007_policy_decisions), kept for `policy simulate`. Writes
 * are buffered and inserted in batches off the request path: this log feeds simulation, while the
 * audit trail (appended before every answer) stays the record of what happened. Rows older than the
 * retention are pruned.
 */

export type DecisionTables = {
  policy_decisions: {
    id: string;
    request_id: string;
    /** ISO 8601: when Cedar was asked. */
    created_at: string;
    policy_version: string;
    app_id: string;
    action: string;
    object: string;
    /** `allow` or `deny`. */
    decision: string;
    /** The ids of the policies that decided, comma-separated (empty for a default deny). */
    policy_ids: string;
    /** JSON of Cedar's input (src/policy RecordedInput): ids, roles, field names, never contents. */
    input: string;
    /** JSON of the row filter an allowed row-filter decision compiled to. */
    row_filter: string | null;
  };
};

export interface DecisionLog {
  /** Queues a decision; it is written within `flushMs`. Never throws and never waits. */
  record(decision: RecordedDecision): void;
  /** Writes what is queued now. */
  flush(): Promise<void>;
  /** Decisions recorded at or after `since`, oldest first; undefined for a stored row that does not parse. */
  read(since: string): AsyncIterable<RecordedDecision | undefined>;
  count(since: string): Promise<number>;
  /** Deletes decisions older than the retention; answers how many. */
  prune(): Promise<number>;
  /** Stops the timers and writes what is queued. */
  close(): Promise<void>;
}

export interface DecisionLogOptions {
  /** Decisions older than this many days are pruned (hourly, and when the log opens); none when absent. */
  retentionDays?: number;
  flushMs?: number;
  /** Queued decisions beyond this while the store cannot be written are dropped (and reported). */
  maxQueued?: number;
  now?: () => Date;
  /** Failures of background writes and prunes. */
  onError?: (error: unknown, dropped: number) => void;
}

const rowsPerInsert = 200;
const pageSize = 500;
const pruneEveryMs = 3_600_000;

/** `database`: the store's Kysely instance (any database type; this module adds its own table). */
export function openDecisionLog(
  database: Pick<Kysely<unknown>, 'withTables'>,
  options: DecisionLogOptions = {},
): DecisionLog {
  const db = database.withTables<DecisionTables>();
  const flushMs = options.flushMs ?? 250;
  const maxQueued = options.maxQueued ?? 10_000;
  const now = options.now ?? (() => new Date());
  const onError = options.onError ?? (() => {});
  if (options.retentionDays !== undefined && !(options.retentionDays > 0)) {
    throw new TypeError('retentionDays must be positive');
  }
  let queue: RecordedDecision[] = [];
  let dropped = 0;
  let writing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  /** The insert of n rows by n; at most rowsPerInsert entries. */
  const insertSql = new Map<number, string>();

  const insert = async (into: typeof db, batch: RecordedDecision[]): Promise<void> => {
    for (let i = 0; i < batch.length; i += rowsPerInsert) {
      const rows = batch.slice(i, i + rowsPerInsert).map(toRow);
      const values = rows.flatMap((row) => columns.map((column) => row[column]));
      // Compiling a batch costs about as much as inserting it: once per number of rows, then reused
      // (the first compile checks that the builder binds the values in this order).
      const known = insertSql.get(rows.length);
      if (known) {
        await into.executeQuery(CompiledQuery.raw(known, values));
      } else {
        const compiled = into.insertInto('policy_decisions').values(rows).compile();
        if (
          compiled.parameters.length === values.length &&
          compiled.parameters.every((value, k) => value === values[k])
        ) {
          insertSql.set(rows.length, compiled.sql);
        }
        await into.executeQuery(compiled);
      }
    }
  };
  let walMode: Promise<boolean> | undefined;
  const write = async (batch: RecordedDecision[]): Promise<void> => {
    walMode ??= sqliteInWalMode(db).catch(() => false);
    if (!(await walMode)) return insert(db, batch);
    // SQLite in WAL mode: the batch commits without waiting for the disk (synchronous=NORMAL, which in
    // WAL mode never corrupts, only loses the latest commits on power failure). The log holds up to
    // flushMs of decisions in memory only anyway, and the next audit append syncs the same write-ahead
    // log before it answers. What this saves is an fsync on the event loop at every flush, during
    // which no request moved. The connection's own level is restored before anyone else uses it.
    await db.connection().execute(async (conn) => {
      const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(conn);
      const level = Math.trunc(Number(rows[0]?.synchronous ?? 2));
      await sql`pragma synchronous = NORMAL`.execute(conn);
      try {
        await insert(conn, batch);
      } finally {
        await sql.raw(`pragma synchronous = ${level}`).execute(conn);
      }
    });
  };
  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    queue = [];
    writing = writing.then(async () => {
      if (batch.length === 0) return;
      try {
        await write(batch);
      } catch (error) {
        // Keep what fits so that a short outage loses nothing; beyond the bound, drop the oldest.
        queue = [...batch, ...queue];
        const excess = queue.length - maxQueued;
        if (excess > 0) {
          queue.splice(0, excess);
          dropped += excess;
        }
        onError(error, dropped);
      }
    });
    return writing;
  };

  const cutoff = () => new Date(now().getTime() - (options.retentionDays ?? 0) * 86_400_000).toISOString();
  const prune = async (): Promise<number> => {
    if (options.retentionDays === undefined) return 0;
    const result = await db
      .deleteFrom('policy_decisions')
      .where('created_at', '<', cutoff())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  };
  const pruneQuietly = () => void prune().catch((error: unknown) => onError(error, dropped));
  let pruner: NodeJS.Timeout | undefined;
  if (options.retentionDays !== undefined) {
    pruneQuietly();
    pruner = setInterval(pruneQuietly, pruneEveryMs);
    pruner.unref();
  }

  return {
    record(decision) {
      queue.push(decision);
      if (queue.length > maxQueued) {
        queue.shift();
        dropped += 1;
      }
      if (queue.length >= rowsPerInsert) void flush();
      else if (!timer) {
        timer = setTimeout(() => void flush(), flushMs);
        timer.unref();
      }
    },
    flush,
    async *read(since) {
      let after: { created_at: string; id: string } | undefined;
      for (;;) {
        let query = db
          .selectFrom('policy_decisions')
          .selectAll()
          .where('created_at', '>=', since)
          .orderBy('created_at')
          .orderBy('id')
          .limit(pageSize);
        if (after) {
          const { created_at, id } = after;
          query = query.where((eb) =>
            eb.or([
              eb('created_at', '>', created_at),
              eb.and([eb('created_at', '=', created_at), eb('id', '>', id)]),
            ]),
          );
        }
        const rows = await query.execute();
        for (const row of rows) yield fromRow(row);
        const last = rows.at(-1);
        if (!last || rows.length < pageSize) return;
        after = { created_at: last.created_at, id: last.id };
      }
    },
    async count(since) {
      const row = await db
        .selectFrom('policy_decisions')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
        .where('created_at', '>=', since)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },
    prune,
    async close() {
      if (pruner) clearInterval(pruner);
      await flush();
    },
  };
}

/** Whether `db` is SQLite with a write-ahead log (the store's file; not an in-memory database). */
async function sqliteInWalMode(db: Kysely<DecisionTables>): Promise<boolean> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return false;
  const { rows } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db);
  return rows[0]?.journal_mode === 'wal';
}

type DecisionRow = DecisionTables['policy_decisions'];

/** The columns in the order toRow writes them, which is the order the builder binds them in. */
const columns: ReadonlyArray<keyof DecisionRow> = [
  'id',
  'request_id',
  'created_at',
  'policy_version',
  'app_id',
  'action',
  'object',
  'decision',
  'policy_ids',
  'input',
  'row_filter',
];

function toRow(decision: RecordedDecision): DecisionRow {
  return {
    id: timeOrderedId(decision.timestamp),
    request_id: decision.requestId.slice(0, 128),
    created_at: decision.timestamp,
    policy_version: decision.version,
    app_id: decision.input.principal.app,
    action: decision.input.action,
    object: decision.input.object,
    decision: decision.allowed ? 'allow' : 'deny',
    policy_ids: decision.policyIds.join(','),
    input: inputJson(decision.input),
    row_filter: decision.where ? JSON.stringify(decision.where) : null,
  };
}

/** The JSON of each recorded input, once: the gateway records a remembered decision's one input again. */
const inputJsons = new WeakMap<RecordedInput, string>();

function inputJson(input: RecordedInput): string {
  let json = inputJsons.get(input);
  if (json === undefined) {
    json = JSON.stringify(input);
    inputJsons.set(input, json);
  }
  return json;
}

/**
 * A UUID of version 7 (RFC 9562): the decision's time in milliseconds, then random bits. Ids that grow
 * with time land at the end of the primary key's index, so a batch dirties a few pages of it instead of
 * one page per row, as random (version 4) ids did.
 */
function timeOrderedId(timestamp: string): string {
  const ms = Date.parse(timestamp);
  const time = (Number.isFinite(ms) && ms > 0 ? ms : Date.now()).toString(16).padStart(12, '0').slice(-12);
  // randomUUID: xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx; its random bits and variant after the version stay.
  return `${time.slice(0, 8)}-${time.slice(8)}-7${randomUUID().slice(15)}`;
}

function fromRow(row: DecisionTables['policy_decisions']): RecordedDecision | undefined {
  const input = parseRecordedInput(row.input);
  if (!input || (row.decision !== 'allow' && row.decision !== 'deny')) return undefined;
  let where: RowCondition[] | undefined;
  if (row.row_filter !== null) {
    try {
      where = JSON.parse(row.row_filter) as RowCondition[];
    } catch {
      return undefined;
    }
    if (!Array.isArray(where)) return undefined;
  }
  return {
    requestId: row.request_id,
    timestamp: row.created_at,
    version: row.policy_version,
    input,
    allowed: row.decision === 'allow',
    policyIds: row.policy_ids === '' ? [] : row.policy_ids.split(','),
    ...(where && { where }),
  };
}

/**
 * Replays the decisions recorded since `since` under `candidate` (src/policy DecisionReplay), with
 * progress as it goes: a week of traffic can be many rows.
 */
export async function simulateRecorded(
  candidate: PolicySet,
  log: DecisionLog,
  since: string,
  onProgress?: (done: number, total: number) => void,
): Promise<RecordedSimulation & { since: string }> {
  const total = await log.count(since);
  const replay = new DecisionReplay(candidate);
  let done = 0;
  for await (const decision of log.read(since)) {
    if (decision) replay.add(decision);
    else replay.skip();
    done += 1;
    if (onProgress && (done % 1000 === 0 || done === total)) onProgress(done, Math.max(total, done));
    // Cedar runs synchronously: in a server, let requests through between small slices of the replay.
    if (done % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return { since, ...replay.report() };
}
