/** A row as the embedded CRM reads it; `id` is always among its columns. */
type Row = Record<string, string | number | null>;

/** Ids taken into one statement at most; more start a statement of their own at once. */
const maxIds = 100;

interface Batch {
  readonly waiting: Map<
    string,
    Array<{ resolve: (row: Row | undefined) => void; reject: (e: unknown) => void }>
  >;
  readonly run: (ids: string[]) => Promise<readonly Row[]>;
}

/**
 * Reads of one record by id that arrive in the same turn of the event loop with the same statement
 * (table, columns, row filter and its values: the `key`) go to the database as one statement over all
 * their ids. Under load, many requests reach their read in the same turn (their Redis answers arrive
 * together), and each statement is a round trip and an execution on PostgreSQL. A read waits at most
 * for the end of the turn; each caller gets its own copy of its row, or undefined when the statement
 * found none, or the statement's error.
 */
export class BatchedReads {
  readonly #open = new Map<string, Batch>();

  read(key: string, id: string, run: Batch['run']): Promise<Row | undefined> {
    let batch = this.#open.get(key);
    if (!batch) {
      const created: Batch = { waiting: new Map(), run };
      this.#open.set(key, created);
      setImmediate(() => this.#flush(key, created));
      batch = created;
    }
    const found = batch;
    return new Promise((resolve, reject) => {
      const waiters = found.waiting.get(id);
      if (waiters) waiters.push({ resolve, reject });
      else found.waiting.set(id, [{ resolve, reject }]);
      if (found.waiting.size >= maxIds) this.#flush(key, found);
    });
  }

  #flush(key: string, batch: Batch): void {
    // Already sent (it filled up before the turn ended).
    if (this.#open.get(key) !== batch) return;
    this.#open.delete(key);
    batch.run([...batch.waiting.keys()]).then(
      (rows) => {
        const byId = new Map(rows.map((row) => [row.id, row]));
        for (const [id, waiters] of batch.waiting) {
          const row = byId.get(id);
          for (const w of waiters) w.resolve(row && { ...row });
        }
      },
      (error: unknown) => {
        for (const waiters of batch.waiting.values()) for (const w of waiters) w.reject(error);
      },
    );
  }
}
