/**
 * The audit log over the store: appends, subtree hashes kept in the same transaction, signed
 * checkpoints, proofs from stored nodes, and the auditor's event queries. On SQLite every process
 * writes the tree itself with group commit (below); on PostgreSQL nodes queue events for one
 * sequencer (sequenced.ts).
 */
import type { SecretStore } from '../secrets/index.js';
import { storeKindOf, type Db } from '../store/index.js';
import type { NoteSigner } from './checkpoint.js';
import type { AuditEvent } from './event.js';
import { GroupCommitLog, type AuditIntegrity } from './group-commit.js';
import { loadSigner } from './keys.js';
import { guard, type AppendListener, type AuditEventPage, type AuditEventQuery } from './reader.js';
import { openSequencedLog } from './sequenced.js';
import type { WitnessingOptions } from './witnessing.js';
import { immediateTransaction } from './transaction.js';
import { AuditWriter, sqliteFileOf, type WriteOutcome } from './writer.js';
import { signTree, unavailable, type Asked, type Head } from './tree.js';

export type { AppendListener, AuditEventPage, AuditEventQuery, AuditEventRecord } from './reader.js';
export type { AuditIntegrity } from './group-commit.js';

export interface AuditLog {
  /** Durable when it resolves. Throws DependencyUnavailable('AUDIT_UNAVAILABLE', ...) when it cannot write. */
  append(event: AuditEvent): Promise<{ index: number; leafHash: string }>;
  events(q: AuditEventQuery): Promise<AuditEventPage>;
  /**
   * Signs a checkpoint now if the tree grew since the last, submits it to the witnesses, and returns it
   * with the cosignatures it holds.
   */
  latestCheckpoint(): Promise<string>;
  /**
   * What GET /audit/v1/checkpoint serves, signing nothing (checkpoints are signed on a schedule): the
   * newest checkpoint with a quorum of witness cosignatures, or the newest one when none are configured.
   */
  publishedCheckpoint(): Promise<string>;
  /** Hex hashes in RFC 9162 order; InputError unless 0 ≤ index < size ≤ the log's size. */
  inclusionProof(index: number, size: number): Promise<string[]>;
  /** Hex hashes in RFC 9162 order; InputError unless 0 ≤ from ≤ to ≤ the log's size. */
  consistencyProof(from: number, to: number): Promise<string[]>;
  verifierKey(): string;
  /**
   * Calls `listener` with each event this instance integrates into the log, in index order, once it is
   * durable: on SQLite every event this process appends; on PostgreSQL, while this node is the
   * sequencer, every node's events. Detection streams the log this way (and reads the store for what
   * it missed: appends by other processes, events from before it took over). A listener that throws is
   * ignored: it can never fail an append. Answers the function that unsubscribes.
   */
  onAppended(listener: AppendListener): () => void;
  /**
   * True while this instance integrates the log: always on SQLite, and on PostgreSQL while this node
   * holds the sequencer role. Work that must run once per cluster (detection) runs where this is true.
   */
  sequencing(): boolean;
  /**
   * Whether the stored tree matched every signed checkpoint when last verified (at open, then every
   * integrityCheckIntervalMs). A damaged log signs no checkpoint; the gateway serves no CRM data.
   */
  integrity(): AuditIntegrity;
  /** Why the latest append failed, until one succeeds again; undefined while appends succeed. */
  lastAppendFailure(): string | undefined;
  /** Stops the timer, writes what is queued and signs a final checkpoint. */
  close(): Promise<void>;
}

export interface AuditLogOptions {
  db: Db;
  secrets: SecretStore;
  /** The log's name: the first line of every checkpoint and the signing key's name. */
  origin: string;
  now?: () => Date;
  /** How often a checkpoint is signed while events flow; default 1000. */
  checkpointIntervalMs?: number;
  /** Witnesses that cosign every checkpoint (c2sp.org/tlog-witness), and how many must. */
  witnessing?: WitnessingOptions;
  /** Failures of the background checkpoint timer (the next latestCheckpoint() reports them too). */
  onBackgroundError?: (error: unknown) => void;
  /**
   * PostgreSQL: what this instance says about the sequencer role (taken, lost). The role moves between
   * nodes by itself; this is for the operator's log.
   */
  onSequencerChange?: (leading: boolean) => void;
  /** PostgreSQL: how long the sequencer may stop answering before the role moves on; default 15000. */
  sequencerLeaseMs?: number;
  /** How often the whole stored log is verified again in the background; default 60000. */
  integrityCheckIntervalMs?: number;
  /**
   * PostgreSQL: 'node' (default) is a serving node, which competes for the sequencer role. 'client' is
   * a short-lived process (the CLI) that never takes a cluster role: it queues its events for the
   * sequencer, and only while no node holds the role does it integrate the queue and sign itself, giving
   * the role back at once (a CLI run during maintenance still gets its events into the log).
   */
  role?: 'node' | 'client';
  /**
   * SQLite: whether close() signs a final checkpoint; default true. False in the workers of
   * `serve --workers N`, whose primary signs one once every worker has stopped.
   */
  finalCheckpoint?: boolean;
}

export async function openAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  const interval = options.checkpointIntervalMs ?? 1000;
  if (!Number.isSafeInteger(interval) || interval <= 0) {
    throw new TypeError('checkpointIntervalMs must be a positive integer');
  }
  if (!options.db || !options.secrets) throw new TypeError('openAuditLog needs db and secrets');
  const signer = await loadSigner(options.secrets, options.origin);
  const log =
    storeKindOf(options.db) === 'postgres'
      ? await openSequencedLog(options, signer, interval)
      : new StoredAuditLog(options, signer, interval, await sqliteFileOf(options.db));
  // Before the first request: a log damaged while the process was down is found before anything is
  // served or signed over it.
  await log.verifyIntegrity();
  log.watchIntegrity(options.integrityCheckIntervalMs ?? 60_000);
  return log;
}

/**
 * SQLite: each process writes the tree itself, on its writer thread (writer.ts). Appends are
 * group-committed in one IMMEDIATE transaction per batch; the file's write lock serializes threads and
 * processes. Checkpoints are signed on the main connection.
 */
class StoredAuditLog extends GroupCommitLog implements AuditLog {
  readonly #timer: NodeJS.Timeout;
  /** Serializes this instance's checkpoint signing; the store's lock serializes it with the writer. */
  #signing: Promise<unknown> = Promise.resolve();
  readonly #writer: AuditWriter;
  #head: Head | undefined;
  #grown = false;
  readonly #finalCheckpoint: boolean;

  constructor(options: AuditLogOptions, signer: NoteSigner, interval: number, file: string) {
    super(options, signer);
    this.#writer = new AuditWriter(file, (error) => this.onBackgroundError(error));
    this.#finalCheckpoint = options.finalCheckpoint ?? true;
    this.#timer = setInterval(() => {
      if (this.#grown && !this.closing)
        this.#sign()
          .then((note) => this.cosigned(note))
          .catch(this.onBackgroundError);
    }, interval);
    this.#timer.unref();
  }

  sequencing(): boolean {
    return !this.closing;
  }

  protected async commit(batch: readonly Asked[]): Promise<void> {
    let outcomes: WriteOutcome[];
    try {
      outcomes = await this.#writer.write({
        // The thread's clock has another origin: the bound travels as wall-clock time.
        since: performance.timeOrigin + batch[0].since,
        at: this.now().toISOString(),
        events: batch.map((asked) => asked.event),
      });
    } catch (cause) {
      const error = unavailable('the audit trail cannot be written', cause);
      for (const asked of batch) asked.reject(error);
      return;
    }
    const appended: Array<{ index: number; leafHash: string; canonical: string }> = [];
    outcomes.forEach((outcome, i) => {
      if ('malformed' in outcome) return batch[i].reject(new TypeError(outcome.malformed));
      appended.push(outcome);
      batch[i].resolve({ index: outcome.index, leafHash: outcome.leafHash });
    });
    if (appended.length > 0) this.#grown = true;
    this.listeners.notify(appended);
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#signing.then(work, work);
    this.#signing = run.catch(() => undefined);
    return run;
  }

  async latestCheckpoint(): Promise<string> {
    return this.cosigned(await this.#sign());
  }

  #sign(): Promise<string> {
    this.#grown = false;
    return this.#exclusive(() =>
      guard(() => {
        this.assertIntact();
        // The commit's fsync runs off the event loop: signing once a second must not stall the
        // requests in flight for the disk's milliseconds.
        return immediateTransaction(
          this.db,
          (trx) => signTree(trx, this.#head, this.signer, this.verifier, this.now().toISOString()),
          { syncOffLoop: true },
        );
      }).then(
        ({ note, head }) => {
          this.#head = head;
          return note;
        },
        (error: unknown) => {
          this.#grown = true;
          this.#head = undefined;
          throw error;
        },
      ),
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.#timer);
      this.stopWatchingIntegrity();
      await this.drained();
      try {
        // The final checkpoint is witnessed too, so a stopped log verifies with its quorum.
        if (this.#finalCheckpoint) await this.cosigned(await this.#sign()).catch(this.onBackgroundError);
      } finally {
        await this.#writer.stop();
      }
    })();
    return this.closing;
  }
}
