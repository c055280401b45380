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
  guard,
  LogReader,
  type AppendListener,
  type AuditEventPage,
  type AuditEventQuery,
} from './reader.js';
import { AuditIntegrityError } from '../errors/index.js';
import { maxBatch, unavailable, type Appended, type Asked } from './tree.js';
import { verifyAppended, type VerifiedPoint } from './verify-store.js';
import { Witnessing, type WitnessingOptions } from './witnessing.js';

/** What the latest verification of the stored log against its signed checkpoints found. */
export type AuditIntegrity =
  | { readonly intact: true }
  | { readonly intact: false; readonly firstBadIndex?: number; readonly problem: string };

/** SQLite's words for a file whose pages no longer parse: damage, not an outage. */
const corruptCodes = new Set([
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_CORRUPT_INDEX',
  'SQLITE_CORRUPT_SEQUENCE',
]);

export abstract class GroupCommitLog {
  protected readonly db: Db;
  protected readonly reader: LogReader;
  protected readonly signer: NoteSigner;
  protected readonly verifier: NoteVerifier;
  protected readonly now: () => Date;
  protected readonly onBackgroundError: (error: unknown) => void;
  protected readonly listeners = new AppendListeners();
  /** Witnesses that cosign each signed checkpoint; undefined when none are configured. */
  protected readonly witnessing: Witnessing | undefined;
  /** Set once close() starts: appends are refused from then on. */
  protected closing: Promise<void> | undefined;
  readonly #verifierKey: string;
  #integrity: AuditIntegrity = { intact: true };
  #appendFailure: string | undefined;
  #verifying: Promise<AuditIntegrity> | undefined;
  /** The last checkpoint a verification found the log to match: the background check starts there. */
  #verified: VerifiedPoint | undefined;
  #watch: NodeJS.Timeout | undefined;
  /** Appends not yet handed to `commit`. */
  #pending: Asked[] = [];
  #draining: Promise<void> | undefined;

  constructor(
    options: {
      db: Db;
      now?: () => Date;
      onBackgroundError?: (error: unknown) => void;
      witnessing?: WitnessingOptions;
    },
    signer: NoteSigner,
  ) {
    this.db = options.db;
    this.reader = new LogReader(options.db);
    this.signer = signer;
    this.#verifierKey = formatVerifierKey(signer.name, signer.publicKey);
    this.verifier = parseVerifierKey(this.#verifierKey);
    this.now = options.now ?? (() => new Date());
    this.onBackgroundError = options.onBackgroundError ?? (() => undefined);
    this.witnessing =
      options.witnessing && options.witnessing.witnesses.length > 0
        ? new Witnessing(
            options.db,
            options.witnessing,
            (from, to) => this.consistencyProof(from, to),
            this.onBackgroundError,
          )
        : undefined;
  }

  /** Signs a checkpoint now if the tree grew since the last, then answers it with its cosignatures. */
  abstract latestCheckpoint(): Promise<string>;

  /**
   * The checkpoint to publish, signing nothing: the newest one with a quorum of witness cosignatures
   * (the newest one when no witness is configured). Only a log with no checkpoint yet signs its first.
   */
  async publishedCheckpoint(): Promise<string> {
    const published = await guard(async () => {
      if (this.witnessing) return this.witnessing.published();
      const row = await this.db
        .selectFrom('audit_checkpoints')
        .select('note')
        .orderBy('size', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row?.note;
    });
    return published ?? this.latestCheckpoint();
  }

  /** The just-signed `note` submitted to the witnesses, with the cosignatures held for it. */
  protected cosigned(note: string): Promise<string> {
    return this.witnessing
      ? guard(() => (this.witnessing as Witnessing).cosign(note))
      : Promise.resolve(note);
  }

  /** Writes one batch: resolves or rejects each of its appends, and tells the listeners what it wrote. */
  protected abstract commit(batch: readonly Asked[]): Promise<void>;

  verifierKey(): string {
    return this.#verifierKey;
  }

  onAppended(listener: AppendListener): () => void {
    return this.listeners.add(listener);
  }

  async append(event: AuditEvent): Promise<Appended> {
    if (this.closing) throw unavailable('the audit log is closed');
    return new Promise((resolve, reject) => {
      const appended = (result: Appended) => {
        this.#appendFailure = undefined;
        resolve(result);
      };
      const failed = (error: unknown) => {
        this.#appendFailure = describeFailure(error);
        reject(error);
      };
      this.#pending.push({ event, since: performance.now(), resolve: appended, reject: failed });
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

  /** Why the latest append failed, until one succeeds again (a full disk, a held lock, an outage). */
  lastAppendFailure(): string | undefined {
    return this.#appendFailure;
  }

  integrity(): AuditIntegrity {
    return this.#integrity;
  }

  /**
   * Recomputes the stored tree and checks it against every signed checkpoint. `incremental`: only what
   * was appended since the last verified checkpoint, and the stored tree's consistency proof from it to
   * the newest one; a finding is confirmed (and located) by a full check. Damage, once found, stays
   * until the log is repaired and the process restarted; a store that cannot be read (an outage) is
   * reported to onBackgroundError and changes nothing.
   */
  verifyIntegrity(options: { incremental?: boolean } = {}): Promise<AuditIntegrity> {
    this.#verifying ??= (async () => {
      try {
        const from = options.incremental ? this.#verified : undefined;
        let run = await verifyAppended(this.db, this.#verifierKey, from);
        if (!run.report.ok && from) run = await verifyAppended(this.db, this.#verifierKey);
        const { report } = run;
        if (report.ok) {
          this.#verified = run.verified ?? this.#verified;
        } else {
          this.#integrity = {
            intact: false,
            firstBadIndex: report.firstBadIndex,
            problem: `${report.code} at index ${report.firstBadIndex}: ${report.problem}`,
          };
        }
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string' && corruptCodes.has(code)) {
          this.#integrity = { intact: false, problem: `the audit store cannot be read (${code})` };
        } else {
          this.onBackgroundError(error);
        }
      }
      return this.#integrity;
    })().finally(() => {
      this.#verifying = undefined;
    });
    return this.#verifying;
  }

  /** Verifies again every `intervalMs` in the background, so damage after start-up is found too. */
  watchIntegrity(intervalMs: number): void {
    this.#watch = setInterval(() => {
      if (!this.closing && this.#integrity.intact) void this.verifyIntegrity({ incremental: true });
    }, intervalMs);
    this.#watch.unref();
  }

  protected stopWatchingIntegrity(): void {
    clearInterval(this.#watch);
  }

  /** Signing refuses a damaged log: a checkpoint would vouch for what was altered. */
  protected assertIntact(): void {
    const state = this.#integrity;
    if (state.intact) return;
    throw new AuditIntegrityError(
      `the audit log is damaged, so no checkpoint is signed over it: ${state.problem}`,
      {
        ...(state.firstBadIndex !== undefined && { first_bad_index: state.firstBadIndex }),
      },
    );
  }

  events(q: AuditEventQuery): Promise<AuditEventPage> {
    return this.reader.events(q);
  }

  inclusionProof(index: number, size: number): Promise<string[]> {
    return this.reader.inclusionProof(index, size);
  }

  consistencyProof(from: number, to: number): Promise<string[]> {
    return this.reader.consistencyProof(from, to);
  }
}

/** The error and its cause's code (SQLITE_FULL, ECONNREFUSED): what an operator needs, no contents. */
function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : 'append failed';
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'string' ? `${message} (${cause.code})` : message;
}
