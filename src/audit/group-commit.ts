/**
 * What the SQLite and the PostgreSQL audit logs share: the signing identity, reading (events, proofs),
 * the append listeners, and group commit. Appends made in one event-loop turn reach `commit` together,
 * in batches of at most maxBatch; how a batch is written is each log's own.
 */
import type { Db } from '../store/index.js';
import { formatVerifierKey, parseVerifierKey, type NoteSigner, type NoteVerifier } from './checkpoint.js';
import type { AuditEvent } from './event.js';
import {
  AppendListeners,
  LogReader,
  type AppendListener,
  type AuditEventQuery,
  type AuditEventRecord,
} from './reader.js';
import { maxBatch, pendingOf, unavailable, type Appended, type Pending } from './tree.js';

export abstract class GroupCommitLog {
  protected readonly db: Db;
  protected readonly reader: LogReader;
  protected readonly signer: NoteSigner;
  protected readonly verifier: NoteVerifier;
  protected readonly now: () => Date;
  protected readonly onBackgroundError: (error: unknown) => void;
  protected readonly listeners = new AppendListeners();
  /** Set once close() starts: appends are refused from then on. */
  protected closing: Promise<void> | undefined;
  readonly #verifierKey: string;
  /** Appends not yet handed to `commit`. */
  #pending: Pending[] = [];
  #draining: Promise<void> | undefined;

  constructor(
    options: { db: Db; now?: () => Date; onBackgroundError?: (error: unknown) => void },
    signer: NoteSigner,
  ) {
    this.db = options.db;
    this.reader = new LogReader(options.db);
    this.signer = signer;
    this.#verifierKey = formatVerifierKey(signer.name, signer.publicKey);
    this.verifier = parseVerifierKey(this.#verifierKey);
    this.now = options.now ?? (() => new Date());
    this.onBackgroundError = options.onBackgroundError ?? (() => undefined);
  }

  /** Writes one batch: resolves or rejects each of its appends, and tells the listeners what it wrote. */
  protected abstract commit(batch: readonly Pending[]): Promise<void>;

  verifierKey(): string {
    return this.#verifierKey;
  }

  onAppended(listener: AppendListener): () => void {
    return this.listeners.add(listener);
  }

  async append(event: AuditEvent): Promise<Appended> {
    if (this.closing) throw unavailable('the audit log is closed');
    return new Promise((resolve, reject) => {
      this.#pending.push(pendingOf(event, resolve, reject));
      void this.#drain();
    });
  }

  /** Resolves once every append made so far has been committed (or has failed). */
  protected async drained(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  #drain(): Promise<void> {
    this.#draining ??= (async () => {
      // Wait for the rest of this event-loop turn: every request whose bytes arrived in the same I/O poll
      // reaches its append first and shares the batch's one transaction (group commit).
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#pending.length > 0) await this.commit(this.#pending.splice(0, maxBatch));
    })().finally(() => {
      this.#draining = undefined;
      if (this.#pending.length > 0) void this.#drain();
    });
    return this.#draining;
  }

  events(q: AuditEventQuery): Promise<{ records: AuditEventRecord[]; next_cursor?: string }> {
    return this.reader.events(q);
  }

  inclusionProof(index: number, size: number): Promise<string[]> {
    return this.reader.inclusionProof(index, size);
  }

  consistencyProof(from: number, to: number): Promise<string[]> {
    return this.reader.consistencyProof(from, to);
  }
}
