/**
 * The audit writer thread (see writer.ts): its own connection to the SQLite store, one write
 * transaction per batch, answered once the WAL is synced.
 */
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { reusingStatements, type Database } from '../store/index.js';
import { immediateTransaction, lockWaitMs } from './transaction.js';
import { appendLeaves, leafOf, loadHead, type Head, type Leaf } from './tree.js';
import { serveCalls } from './thread.js';
import type { WriteOutcome, WriteRequest, WriterData } from './writer.js';

const port = parentPort;
if (!port) throw new TypeError('writer-thread.js runs as a worker thread');
const { file } = workerData as WriterData;

const handle = new SQLite(file);
// Lock waits are bounded and asynchronous in immediateTransaction, never SQLite's busy handler.
handle.pragma('busy_timeout = 0');
handle.pragma('synchronous = FULL');
// Each batch runs the same few statements: prepared once, not on every batch (Kysely prepares each query).
const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: reusingStatements(handle) }) });

/** The right edge this thread last wrote; checked against the store in every transaction. */
let head: Head | undefined;

// Batches arrive one at a time (the main thread awaits each answer), so writes never overlap.
serveCalls(port, write);

async function write(request: WriteRequest): Promise<WriteOutcome[]> {
  const leaves: Leaf[] = [];
  const encoded: Array<Leaf | { malformed: string }> = request.events.map((event) => {
    try {
      const leaf = leafOf(event);
      leaves.push(leaf);
      return leaf;
    } catch (error) {
      return { malformed: error instanceof Error ? error.message : 'malformed audit event' };
    }
  });
  // The bound counts from the oldest append in the batch, in the main thread's clock.
  const deadline = request.since + lockWaitMs - performance.timeOrigin;
  const results =
    leaves.length === 0
      ? []
      : await immediateTransaction(
          db,
          async (trx) => {
            const outcome = await appendLeaves(trx, await loadHead(trx, head), leaves, request.at);
            head = outcome.head;
            return outcome.results;
          },
          { syncOffLoop: true, deadline },
        ).catch((error: unknown) => {
          head = undefined;
          throw error;
        });
  let next = 0;
  return encoded.map((leaf): WriteOutcome => {
    if ('malformed' in leaf) return leaf;
    const { index, leafHash } = results[next++];
    return { index, leafHash, canonical: leaf.canonical };
  });
}
