/** Paged, bounded reads of the stored log shared by verification and export. */
import type { Db } from '../store/index.js';

export const eventPage = 1000;
const checkpointPage = 500;

export interface StoredEvent {
  idx: number;
  event: string;
  leaf_hash: string;
}

export interface StoredCheckpoint {
  size: number;
  root_hash: string;
  note: string;
}

/**
 * The bounds of a consistent view while writers go on: the latest checkpoint size is read before the
 * event count, so an honest log always has every event a bounded checkpoint covers.
 */
export async function snapshotBounds(db: Db): Promise<{ size: number; checkpointSize: number }> {
  const checkpoint = await db
    .selectFrom('audit_checkpoints')
    .select('size')
    .orderBy('size', 'desc')
    .limit(1)
    .executeTakeFirst();
  const last = await db
    .selectFrom('audit_events')
    .select('idx')
    .orderBy('idx', 'desc')
    .limit(1)
    .executeTakeFirst();
  return { size: last ? Number(last.idx) + 1 : 0, checkpointSize: checkpoint ? Number(checkpoint.size) : -1 };
}

/**
 * Events with from ≤ idx < size, in index order, a page at a time. The event loop turns before each
 * page after the first: SQLite answers synchronously, so a run over many pages (the server's minute of
 * integrity checking) would otherwise be one turn, seconds in which no request is served.
 */
export async function* storedEvents(db: Db, size: number, from = 0): AsyncGenerator<StoredEvent[]> {
  let after = from - 1;
  for (let page = 0; ; page++) {
    if (page > 0) await new Promise((resolve) => setImmediate(resolve));
    const rows = await db
      .selectFrom('audit_events')
      .select(['idx', 'event', 'leaf_hash'])
      .where('idx', '>', after)
      .where('idx', '<', size)
      .orderBy('idx')
      .limit(eventPage)
      .execute();
    if (rows.length === 0) return;
    yield rows.map((row) => ({ idx: Number(row.idx), event: row.event, leaf_hash: row.leaf_hash }));
    after = Number(rows[rows.length - 1].idx);
  }
}

/** Checkpoints with size ≤ maxSize in size order, read a page at a time as they are taken. */
export class CheckpointReader {
  readonly #db: Db;
  readonly #maxSize: number;
  #buffer: StoredCheckpoint[] = [];
  #after = -1;
  #exhausted = false;

  /** `minSize`: checkpoints of at least this size only. */
  constructor(db: Db, maxSize: number, minSize = 0) {
    this.#db = db;
    this.#maxSize = maxSize;
    this.#after = minSize - 1;
    this.#exhausted = maxSize < 0;
  }

  /** The next checkpoint if its size is at most `size`, else undefined (nothing is consumed). */
  async takeUpTo(size: number): Promise<StoredCheckpoint | undefined> {
    const next = await this.peek();
    if (!next || next.size > size) return undefined;
    return this.#buffer.shift();
  }

  async take(): Promise<StoredCheckpoint | undefined> {
    await this.peek();
    return this.#buffer.shift();
  }

  async peek(): Promise<StoredCheckpoint | undefined> {
    if (this.#buffer.length === 0 && !this.#exhausted) {
      const rows = await this.#db
        .selectFrom('audit_checkpoints')
        .select(['size', 'root_hash', 'note'])
        .where('size', '>', this.#after)
        .where('size', '<=', this.#maxSize)
        .orderBy('size')
        .limit(checkpointPage)
        .execute();
      this.#buffer = rows.map((row) => ({
        size: Number(row.size),
        root_hash: row.root_hash,
        note: row.note,
      }));
      if (rows.length < checkpointPage) this.#exhausted = true;
      if (rows.length > 0) this.#after = this.#buffer[this.#buffer.length - 1].size;
    }
    return this.#buffer[0];
  }
}
