import { sql, type Kysely } from 'kysely';
import { storeKindOf, type Db } from '../store/index.js';
import {
  blindIndexColumn,
  blindIndexOf,
  isSealed,
  openValue,
  sealedPattern,
  sealedVersion,
  sealValue,
} from './field-crypto.js';
import type { FieldKeys } from './field-keys.js';
import { encryptedFieldRefs, specOf, type CrmTable } from './metadata.js';
import type { CrmObject } from './types.js';

/**
 * Moves every stored value of the encrypted fields onto the field's current key: plain values from
 * before encryption are sealed in place, values under an older key are re-sealed. Batch by batch, each
 * in its own transaction, and each row only if nobody changed it meanwhile, so it runs beside a serving
 * gateway, and a run that stops halfway is resumed by running it again: what is left to do is read from
 * the rows themselves. An old key version no row uses any more is retired; its key is destroyed by a
 * later run, once it has been retired longer than any write takes and still no row uses it: a write
 * that read the old version just before the rotation and commits after the check stays readable, and
 * the next run moves it.
 */

export interface FieldProgress {
  readonly object: CrmObject;
  readonly field: string;
  /** The key version the field's values move to. */
  readonly version: number;
  readonly done: number;
  readonly total: number;
}

export interface FieldReport {
  readonly object: CrmObject;
  readonly field: string;
  readonly version: number;
  /** Plain values sealed. */
  readonly sealed: number;
  /** Values moved from an older key version. */
  readonly reencrypted: number;
  /** Key versions retired in this run (their keys kept for the grace). */
  readonly retired: number[];
  /** Key versions whose keys this run destroyed (retired past the grace, used by no row). */
  readonly destroyed: number[];
}

export interface ReencryptOptions {
  /** Only this field (`{ object: 'contact', field: 'national_id' }`); all encrypted fields when absent. */
  readonly only?: { readonly object: CrmObject; readonly field: string };
  readonly batchSize?: number;
  /** After each batch; a throw stops the run (the next run resumes it). */
  readonly onProgress?: (progress: FieldProgress) => void;
  /** How long a retired key is kept before it is destroyed; default 15 minutes, longer than any write. */
  readonly destroyAfterMs?: number;
}

type Row = Record<string, string | number | null>;
type CrmDb = Kysely<Record<CrmTable, Row>>;

export async function reencryptFields(
  store: Db,
  keys: FieldKeys,
  options: ReencryptOptions = {},
): Promise<FieldReport[]> {
  const batchSize = options.batchSize ?? 500;
  const destroyAfterMs = options.destroyAfterMs ?? 15 * 60_000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new TypeError('batchSize must be a positive integer');
  const targets = encryptedFieldRefs().filter(
    (t) => !options.only || (options.only.object === t.object && options.only.field === t.field),
  );
  if (options.only && targets.length === 0) {
    throw new TypeError(`${options.only.object}.${options.only.field} is not an encrypted field`);
  }
  // SQLite then zeroes the space a replaced value leaves in its page, rather than leaving it readable.
  if (storeKindOf(store) === 'sqlite') await sql`PRAGMA secure_delete = ON`.execute(store);
  const reports: FieldReport[] = [];
  for (const { object, field } of targets) {
    reports.push(
      await reencryptField(store, keys, object, field, batchSize, options.onProgress, destroyAfterMs),
    );
  }
  const plainTables = new Set(reports.filter((r) => r.sealed > 0).map((r) => specOf(r.object).table));
  if (plainTables.size > 0) await forgetPlainCopies(store, [...plainTables]);
  return reports;
}

async function reencryptField(
  store: Db,
  keys: FieldKeys,
  object: CrmObject,
  field: string,
  batchSize: number,
  onProgress: ReencryptOptions['onProgress'],
  destroyAfterMs: number,
): Promise<FieldReport> {
  const db = store as unknown as CrmDb;
  const { table } = specOf(object);
  const { version, key } = await keys.current(object, field);
  const indexKey = await keys.indexKey(object, field);
  const current = sealedPattern(version);
  const pending = () => db.selectFrom(table).where(field, 'is not', null).where(field, 'not like', current);
  const total = Number(
    (
      await pending()
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
  let done = 0;
  let sealed = 0;
  let reencrypted = 0;
  for (;;) {
    const rows = await pending().select(['id', field]).orderBy('id').limit(batchSize).execute();
    if (rows.length === 0) break;
    const moved = await Promise.all(
      rows.map(async (row) => {
        const id = String(row.id);
        const stored = String(row[field]);
        const at = { object, id, field };
        const plain = isSealed(stored)
          ? openValue(await keys.key(object, field, sealedVersion(stored) ?? 0), at, stored)
          : stored;
        return {
          id,
          stored,
          wasPlain: !isSealed(stored),
          next: {
            [field]: sealValue(key, version, at, plain),
            [blindIndexColumn(field)]: blindIndexOf(indexKey, object, field, plain),
          },
        };
      }),
    );
    await db.transaction().execute(async (trx) => {
      for (const row of moved) {
        // Only if unchanged since read: a concurrent write already sealed it under the current key.
        await trx
          .updateTable(table)
          .set(row.next)
          .where('id', '=', row.id)
          .where(field, '=', row.stored)
          .execute();
      }
    });
    for (const row of moved) {
      if (row.wasPlain) sealed++;
      else reencrypted++;
    }
    done += rows.length;
    onProgress?.({ object, field, version, done: Math.min(done, total), total });
  }

  const retired: number[] = [];
  const destroyed: number[] = [];
  for (const old of await keys.versions(object, field)) {
    if (old.state === 'destroyed' || old.version >= version) continue;
    const users = await db
      .selectFrom(table)
      .select('id')
      .where(field, 'like', sealedPattern(old.version))
      .limit(1)
      .executeTakeFirst();
    if (users) continue;
    if (old.state === 'active') {
      await keys.retire(object, field, old.version);
      retired.push(old.version);
    } else if (Date.now() - Date.parse(old.retired_at ?? '') >= destroyAfterMs) {
      await keys.destroy(object, field, old.version);
      destroyed.push(old.version);
    }
  }
  return { object, field, version, sealed, reencrypted, retired, destroyed };
}

/**
 * After plain values were sealed in place, their old bytes may linger: SQLite in the write-ahead log
 * (freed page space is zeroed by secure_delete), PostgreSQL in dead row versions. This writes them over.
 */
async function forgetPlainCopies(db: Db, tables: readonly CrmTable[]): Promise<void> {
  if (storeKindOf(db) === 'sqlite') {
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
    return;
  }
  for (const table of tables) await sql`VACUUM FULL ${sql.table(table)}`.execute(db);
}
