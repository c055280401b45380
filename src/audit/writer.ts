/**
 * The SQLite audit writer's main-thread side. A worker thread (writer-thread.ts) owns its own
 * connection to the store and does the canonical encoding check, the leaf and Merkle hashing, the
 * write transaction and the fsync; the event loop only hands it each batch and awaits the durable
 * acknowledgement, so it serves other requests meanwhile.
 *
 * A thread that dies (an uncaught error, out of memory, terminated) fails closed: every batch it held
 * is refused AUDIT_UNAVAILABLE at once, never left waiting, and the next batch starts a new thread,
 * which reads the tree's right edge back from the store. A batch the dead thread may have committed
 * is refused all the same: its events may be in the log, but no answer relied on them.
 */
import { Worker } from 'node:worker_threads';
import { sql } from 'kysely';
import type { Db } from '../store/index.js';
import type { AuditEvent } from './event.js';

/** What the thread is given when it starts. */
export interface WriterData {
  readonly file: string;
}

/** One batch for the thread; `since` (epoch ms) bounds its wait for the store's lock. */
export interface WriteRequest {
  readonly id: number;
  readonly since: number;
  /** The append time to store (the log's clock, which tests freeze). */
  readonly at: string;
  readonly events: readonly AuditEvent[];
}

/** One event's fate: its place in the log, or why it was no event (a TypeError on this side). */
export type WriteOutcome = { index: number; leafHash: string; canonical: string } | { malformed: string };

export type WriteReply =
  | { readonly id: number; readonly outcomes: WriteOutcome[] }
  | { readonly id: number; readonly failure: { message: string; code?: string } };

interface InFlight {
  resolve(outcomes: WriteOutcome[]): void;
  reject(error: Error): void;
}

/**
 * The thread's compiled entry: beside this file once built; when this file runs from source (vitest
 * transforms TypeScript, which a worker thread cannot load), the built copy in dist/.
 */
const entry = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/audit/writer-thread.js', import.meta.url)
  : new URL('./writer-thread.js', import.meta.url);

export class AuditWriter {
  readonly #file: string;
  readonly #onStopped: (error: Error) => void;
  readonly #inFlight = new Map<number, InFlight>();
  #worker: Worker | undefined;
  #next = 0;

  constructor(file: string, onStopped: (error: Error) => void) {
    this.#file = file;
    this.#onStopped = onStopped;
  }

  /** Writes `events` in one transaction; resolves once durable, rejects when the thread cannot answer. */
  write(request: Omit<WriteRequest, 'id'>): Promise<WriteOutcome[]> {
    const worker = (this.#worker ??= this.#spawn());
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#inFlight.set(id, { resolve, reject });
      // Held only while a batch is out: an idle writer never keeps a process (a CLI command) alive.
      worker.ref();
      worker.postMessage({ ...request, id } satisfies WriteRequest);
    });
  }

  /**
   * Stops the thread. Batches still out are refused AUDIT_UNAVAILABLE, as when it crashes; close()
   * calls this once the log is drained. The next write starts a new thread.
   */
  async stop(): Promise<void> {
    await this.#worker?.terminate();
  }

  #spawn(): Worker {
    const worker = new Worker(entry, { workerData: { file: this.#file } satisfies WriterData });
    worker.on('message', (reply: WriteReply) => {
      const waiting = this.#inFlight.get(reply.id);
      this.#inFlight.delete(reply.id);
      if (this.#inFlight.size === 0) worker.unref();
      if (!waiting) return;
      if ('outcomes' in reply) waiting.resolve(reply.outcomes);
      else waiting.reject(Object.assign(new Error(reply.failure.message), { code: reply.failure.code }));
    });
    worker.on('error', (error) => this.#stopped(worker, error));
    worker.on('exit', (code) =>
      this.#stopped(
        worker,
        Object.assign(new Error(`the audit writer thread stopped (exit code ${code})`), {
          code: 'AUDIT_WRITER_STOPPED',
        }),
      ),
    );
    return worker;
  }

  #stopped(worker: Worker, error: Error): void {
    if (this.#worker === worker) this.#worker = undefined;
    if (this.#inFlight.size === 0) return;
    const held = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const waiting of held) waiting.reject(error);
    this.#onStopped(error);
  }
}

/** The file of the SQLite database `db` is open on; TypeError for an in-memory one (no thread can share it). */
export async function sqliteFileOf(db: Db): Promise<string> {
  const { rows } = await sql<{ name: string; file: string }>`pragma database_list`.execute(db);
  const file = rows.find((row) => row.name === 'main')?.file ?? '';
  if (file === '') throw new TypeError('the SQLite audit log needs a database file, not an in-memory one');
  return file;
}
