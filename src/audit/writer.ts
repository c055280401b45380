/**
 * The SQLite audit writer's main-thread side. A worker thread (writer-thread.ts) owns its own
 * connection to the store and does the canonical encoding check, the leaf and Merkle hashing, the
 * write transaction and the fsync; the event loop only hands it each batch and awaits the durable
 * acknowledgement, so it serves other requests meanwhile.
 *
 * A thread that dies refuses every batch it held at once (thread.ts), and the next batch starts a new
 * thread, which reads the tree's right edge back from the store. A batch the dead thread may have
 * committed is refused all the same: its events may be in the log, but no answer relied on them.
 */
import { sql } from 'kysely';
import type { Db } from '../store/index.js';
import type { AuditEvent } from './event.js';
import { logFileOf } from './log-file.js';
import { AuditThread, threadEntry } from './thread.js';

/** What the thread is given when it starts. */
export interface WriterData {
  readonly file: string;
}

/** One batch for the thread; `since` (epoch ms) bounds its wait for the store's lock. */
export interface WriteRequest {
  readonly since: number;
  /** The append time to store (the log's clock, which tests freeze). */
  readonly at: string;
  readonly events: readonly AuditEvent[];
}

/** One event's fate: its place in the log, or why it was no event (a TypeError on this side). */
export type WriteOutcome = { index: number; leafHash: string; canonical: string } | { malformed: string };

/**
 * The writer's isolate: a batch's objects die with the batch, so a young generation of 2 MB semi-spaces
 * holds them (V8's default lets it grow to 16 MB ones, ~25 MB of RSS for nothing). The old generation
 * keeps V8's limit: a thread that ran out of memory would refuse every batch.
 */
export const writerResourceLimits = { maxYoungGenerationSizeMb: 6 } as const;

export class AuditWriter {
  readonly #thread: AuditThread<WriteRequest, WriteOutcome[]>;

  constructor(file: string, onStopped: (error: Error) => void) {
    this.#thread = new AuditThread(
      threadEntry('writer-thread'),
      { file } satisfies WriterData,
      onStopped,
      writerResourceLimits,
    );
  }

  /** Writes `events` in one transaction; resolves once durable, rejects when the thread cannot answer. */
  write(request: WriteRequest): Promise<WriteOutcome[]> {
    return this.#thread.call(request);
  }

  /** Stops the thread: batches still out are refused, as when it crashes; close() calls it once drained. */
  stop(): Promise<void> {
    return this.#thread.stop();
  }
}

/**
 * The SQLite file holding the log on `db`'s connection: the attached audit file, else the main one;
 * TypeError for an in-memory one (no thread can share it).
 */
export async function sqliteFileOf(db: Db): Promise<string> {
  const { rows } = await sql<{ name: string; file: string }>`pragma database_list`.execute(db);
  const file = logFileOf(rows)?.file ?? '';
  if (file === '') throw new TypeError('the SQLite audit log needs a database file, not an in-memory one');
  return file;
}
