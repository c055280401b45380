/**
 * The audit log over the store: group-committed appends, subtree hashes kept in the same transaction,
 * signed checkpoints, proofs from stored nodes, and the auditor's event queries.
 */
import { sql } from 'kysely';
import { AuditIntegrityError, DependencyUnavailable, GatehouseError, InputError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';
import {
  formatVerifierKey,
  openCheckpoint,
  parseVerifierKey,
  signCheckpoint,
  type NoteSigner,
  type NoteVerifier,
} from './checkpoint.js';
import { canonicalEvent, isAuditEvent, type AuditEvent } from './event.js';
import { loadSigner } from './keys.js';
import {
  appendLeaf,
  compactRangeFrom,
  compactRangeNodes,
  consistencyProof,
  hashEquals,
  hashLeaf,
  inclusionProof,
  rangeRoot,
  verifyConsistency,
  type CompactRange,
} from './merkle.js';
import { getterOf, parseStoredHash, readNodes, withStoredNodes } from './nodes.js';
import { immediateTransaction } from './transaction.js';

export interface AuditEventRecord {
  index: number;
  leaf_hash: string;
  event: AuditEvent;
}

export interface AuditEventQuery {
  request_id?: string;
  app_id?: string;
  /** ISO 8601 timestamp: events appended at or after it. */
  since?: string;
  cursor?: string;
  /** 1..1000, default 100. */
  limit?: number;
}

export interface AuditLog {
  /** Durable when it resolves. Throws DependencyUnavailable('AUDIT_UNAVAILABLE', ...) when it cannot write. */
  append(event: AuditEvent): Promise<{ index: number; leafHash: string }>;
  events(q: AuditEventQuery): Promise<{ records: AuditEventRecord[]; next_cursor?: string }>;
  /** Signs a checkpoint now if the tree grew since the last, then returns the latest signed note text. */
  latestCheckpoint(): Promise<string>;
  /** Hex hashes in RFC 9162 order; InputError unless 0 ≤ index < size ≤ the log's size. */
  inclusionProof(index: number, size: number): Promise<string[]>;
  /** Hex hashes in RFC 9162 order; InputError unless 0 ≤ from ≤ to ≤ the log's size. */
  consistencyProof(from: number, to: number): Promise<string[]>;
  verifierKey(): string;
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
  /** Failures of the background checkpoint timer (the next latestCheckpoint() reports them too). */
  onBackgroundError?: (error: unknown) => void;
}

/** The right edge of the tree as this process last saw it in the store. */
interface Head {
  readonly range: CompactRange;
  readonly lastLeaf: Buffer | undefined;
  readonly lastAppendedAt: string;
}

interface Pending {
  readonly canonical: string;
  readonly leaf: Buffer;
  readonly event: AuditEvent;
  resolve(value: { index: number; leafHash: string }): void;
  reject(error: unknown): void;
}

const maxBatch = 1000;
const eventRowsPerInsert = 500;
const nodeRowsPerInsert = 1000;
const defaultPage = 100;
const maxPage = 1000;

export async function openAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  const interval = options.checkpointIntervalMs ?? 1000;
  if (!Number.isSafeInteger(interval) || interval <= 0) {
    throw new TypeError('checkpointIntervalMs must be a positive integer');
  }
  if (!options.db || !options.secrets) throw new TypeError('openAuditLog needs db and secrets');
  const signer = await loadSigner(options.secrets, options.origin);
  return new StoredAuditLog(options, signer, interval);
}

class StoredAuditLog implements AuditLog {
  readonly #db: Db;
  readonly #signer: NoteSigner;
  readonly #verifierKey: string;
  readonly #verifier: NoteVerifier;
  readonly #now: () => Date;
  readonly #onBackgroundError: (error: unknown) => void;
  readonly #timer: NodeJS.Timeout;
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  /** Serializes this instance's write transactions; the store's lock serializes processes. */
  #writer: Promise<unknown> = Promise.resolve();
  #head: Head | undefined;
  #grown = false;
  #closing: Promise<void> | undefined;

  constructor(options: AuditLogOptions, signer: NoteSigner, interval: number) {
    this.#db = options.db;
    this.#signer = signer;
    this.#verifierKey = formatVerifierKey(signer.name, signer.publicKey);
    this.#verifier = parseVerifierKey(this.#verifierKey);
    this.#now = options.now ?? (() => new Date());
    this.#onBackgroundError = options.onBackgroundError ?? (() => undefined);
    this.#timer = setInterval(() => {
      if (this.#grown && !this.#closing) this.#sign().catch(this.#onBackgroundError);
    }, interval);
    this.#timer.unref();
  }

  verifierKey(): string {
    return this.#verifierKey;
  }

  async append(event: AuditEvent): Promise<{ index: number; leafHash: string }> {
    if (this.#closing) throw new DependencyUnavailable('AUDIT_UNAVAILABLE', 'the audit log is closed');
    const canonical = canonicalEvent(event);
    const leaf = hashLeaf(Buffer.from(canonical, 'utf8'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ canonical, leaf, event, resolve, reject });
      void this.#drain();
    });
  }

  /** Group commit: one transaction for everything queued; what arrives meanwhile goes in the next. */
  #drain(): Promise<void> {
    this.#draining ??= (async () => {
      // Wait for the rest of this event-loop turn: every request whose bytes arrived in the same I/O poll
      // reaches its append first and shares the batch's one transaction (group commit).
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, maxBatch);
        try {
          const results = await this.#exclusive(() => this.#write(batch));
          batch.forEach((pending, i) => pending.resolve(results[i]));
        } catch (cause) {
          const error = new DependencyUnavailable('AUDIT_UNAVAILABLE', 'the audit trail cannot be written', {
            cause,
          });
          for (const pending of batch) pending.reject(error);
        }
      }
    })().finally(() => {
      this.#draining = undefined;
      if (this.#queue.length > 0) void this.#drain();
    });
    return this.#draining;
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#writer.then(work, work);
    this.#writer = run.catch(() => undefined);
    return run;
  }

  async #write(batch: readonly Pending[]): Promise<Array<{ index: number; leafHash: string }>> {
    const outcome = await immediateTransaction(this.#db, async (trx) => {
      const head = await this.#loadHead(trx);
      // Append times never go backwards along the log, so `since` can be found by bisection.
      const now = this.#now().toISOString();
      const appendedAt = now > head.lastAppendedAt ? now : head.lastAppendedAt;
      let range = head.range;
      const events: EventRow[] = [];
      const nodes: Array<{ level: number; idx: number; hash: string }> = [];
      const results: Array<{ index: number; leafHash: string }> = [];
      for (const pending of batch) {
        const index = range.size;
        const leafHash = pending.leaf.toString('hex');
        range = appendLeaf(range, pending.leaf, (level, idx, hash) =>
          nodes.push({ level, idx, hash: hash.toString('hex') }),
        );
        events.push({
          idx: index,
          event: pending.canonical,
          leaf_hash: leafHash,
          request_id: pending.event.request_id,
          app_id: pending.event.app_id,
          created_at: appendedAt,
        });
        results.push({ index, leafHash });
      }
      for (let i = 0; i < events.length; i += eventRowsPerInsert) {
        await trx
          .insertInto('audit_events')
          .values(events.slice(i, i + eventRowsPerInsert))
          .execute();
      }
      for (let i = 0; i < nodes.length; i += nodeRowsPerInsert) {
        await trx
          .insertInto('audit_nodes')
          .values(nodes.slice(i, i + nodeRowsPerInsert))
          .execute();
      }
      const next: Head = { range, lastLeaf: batch[batch.length - 1].leaf, lastAppendedAt: appendedAt };
      return { results, next };
    }).catch((error: unknown) => {
      this.#head = undefined;
      throw error;
    });
    this.#head = outcome.next;
    this.#grown = true;
    return outcome.results;
  }

  /**
   * The store's current right edge, inside the write transaction. The cached compact range is used only
   * when the store's size and last leaf match it (another process may have appended); else it is read
   * back from stored nodes, O(log n) rows.
   */
  async #loadHead(trx: Db): Promise<Head> {
    // One statement for the last event and the latest checkpoint size: this runs in every append.
    const { rows } = await sql<{
      checkpoint_size: number | null;
      idx: number | null;
      leaf_hash: string | null;
      created_at: string | null;
    }>`select (select max(size) from audit_checkpoints) as checkpoint_size, e.idx, e.leaf_hash, e.created_at
       from (select 1 as one) as o
       left join (select idx, leaf_hash, created_at from audit_events order by idx desc limit 1) as e on 1 = 1`.execute(
      trx,
    );
    const head = rows[0];
    const last =
      head && head.idx !== null && head.leaf_hash !== null && head.created_at !== null
        ? { idx: head.idx, leaf_hash: head.leaf_hash, created_at: head.created_at }
        : undefined;
    const size = last ? Number(last.idx) + 1 : 0;
    if (
      head?.checkpoint_size !== null &&
      head?.checkpoint_size !== undefined &&
      Number(head.checkpoint_size) > size
    ) {
      throw new AuditIntegrityError('the audit store holds fewer events than its latest signed checkpoint', {
        size,
        checkpoint_size: Number(head.checkpoint_size),
      });
    }
    const lastLeaf = last ? parseStoredHash(last.leaf_hash, { level: 0, index: size - 1 }) : undefined;
    const lastAppendedAt = last?.created_at ?? '';
    const cached = this.#head;
    if (
      cached &&
      cached.range.size === size &&
      (size === 0 ||
        (cached.lastLeaf !== undefined && lastLeaf !== undefined && hashEquals(cached.lastLeaf, lastLeaf)))
    ) {
      return { ...cached, lastAppendedAt };
    }
    const stored = await readNodes(trx, compactRangeNodes(size));
    return { range: compactRangeFrom(size, getterOf(stored)), lastLeaf, lastAppendedAt };
  }

  async latestCheckpoint(): Promise<string> {
    return this.#sign();
  }

  /**
   * Signs the store's current tree unless the latest checkpoint already covers it, after proving the
   * new tree consistent with that checkpoint from stored nodes. Never signs a smaller size.
   */
  #sign(): Promise<string> {
    this.#grown = false;
    return this.#exclusive(() =>
      guard(() =>
        immediateTransaction(this.#db, async (trx) => {
          const head = await this.#loadHead(trx);
          const { size } = head.range;
          const root = rangeRoot(head.range);
          const latest = await trx
            .selectFrom('audit_checkpoints')
            .select(['size', 'note'])
            .orderBy('size', 'desc')
            .limit(1)
            .executeTakeFirst();
          if (latest) {
            const opened = openCheckpoint(latest.note, this.#verifier);
            if (!opened.ok || opened.checkpoint.size !== Number(latest.size)) {
              throw new AuditIntegrityError('the latest stored checkpoint does not verify', {
                checkpoint_size: Number(latest.size),
                problem: opened.ok ? 'CHECKPOINT_MALFORMED' : opened.code,
              });
            }
            const previous = opened.checkpoint;
            const proof =
              previous.size === size
                ? []
                : await withStoredNodes(trx, (get) => consistencyProof(previous.size, size, get));
            if (!verifyConsistency(previous.size, size, previous.root, root, proof)) {
              throw new AuditIntegrityError(
                'the audit log is not consistent with its latest signed checkpoint',
                {
                  checkpoint_size: previous.size,
                  size,
                },
              );
            }
            if (previous.size === size) return { note: latest.note, head };
          }
          const note = signCheckpoint({ origin: this.#signer.name, size, root }, this.#signer);
          await trx
            .insertInto('audit_checkpoints')
            .values({ size, root_hash: root.toString('hex'), note, created_at: this.#now().toISOString() })
            .execute();
          return { note, head };
        }),
      ).then(
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

  async events(q: AuditEventQuery): Promise<{ records: AuditEventRecord[]; next_cursor?: string }> {
    const limit = q.limit ?? defaultPage;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxPage) {
      throw new InputError(`limit must be between 1 and ${maxPage}`, { parameter: 'limit' });
    }
    const after = q.cursor === undefined ? -1 : parseCursor(q.cursor);
    const since = q.since === undefined ? undefined : parseSince(q.since);
    return guard(async () => {
      let query = this.#db
        .selectFrom('audit_events')
        .select(['idx', 'event', 'leaf_hash'])
        .where('idx', '>', after)
        .orderBy('idx')
        .limit(limit + 1);
      if (q.request_id !== undefined) query = query.where('request_id', '=', q.request_id);
      if (q.app_id !== undefined) query = query.where('app_id', '=', q.app_id);
      if (since !== undefined) {
        query = query.where('idx', '>=', await this.#firstAppendedAt(since)).where('created_at', '>=', since);
      }
      const rows = await query.execute();
      const records = rows.slice(0, limit).map((row) => {
        const index = Number(row.idx);
        return { index, leaf_hash: row.leaf_hash, event: storedEvent(row.event, index) };
      });
      return rows.length > limit
        ? { records, next_cursor: String(records[records.length - 1].index) }
        : { records };
    });
  }

  /** The first index appended at or after `since`: bisection over the monotone append times. */
  async #firstAppendedAt(since: string): Promise<number> {
    let low = 0;
    let high = await this.#size();
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const row = await this.#db
        .selectFrom('audit_events')
        .select('created_at')
        .where('idx', '>=', middle)
        .orderBy('idx')
        .limit(1)
        .executeTakeFirst();
      if (!row || row.created_at >= since) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  async #size(): Promise<number> {
    const last = await this.#db
      .selectFrom('audit_events')
      .select('idx')
      .orderBy('idx', 'desc')
      .limit(1)
      .executeTakeFirst();
    return last ? Number(last.idx) + 1 : 0;
  }

  async inclusionProof(index: number, size: number): Promise<string[]> {
    return guard(async () => {
      const logSize = await this.#size();
      if (!isCount(index) || !isCount(size) || index >= size || size > logSize) {
        throw new InputError('index must be below size, and size at most the size of the log', {
          index,
          size,
          log_size: logSize,
        });
      }
      const proof = await withStoredNodes(this.#db, (get) => inclusionProof(index, size, get));
      return proof.map((hash) => hash.toString('hex'));
    });
  }

  async consistencyProof(from: number, to: number): Promise<string[]> {
    return guard(async () => {
      const logSize = await this.#size();
      if (!isCount(from) || !isCount(to) || from > to || to > logSize) {
        throw new InputError('from must not exceed to, and to must be at most the size of the log', {
          from,
          to,
          log_size: logSize,
        });
      }
      const proof = await withStoredNodes(this.#db, (get) => consistencyProof(from, to, get));
      return proof.map((hash) => hash.toString('hex'));
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      while (this.#draining) await this.#draining;
      await this.#sign();
    })();
    return this.#closing;
  }
}

interface EventRow {
  idx: number;
  event: string;
  leaf_hash: string;
  request_id: string;
  app_id: string | null;
  created_at: string;
}

/** Store failures become AUDIT_UNAVAILABLE; Gatehouse errors (input, integrity) pass through. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (cause) {
    if (cause instanceof GatehouseError) throw cause;
    throw new DependencyUnavailable('AUDIT_UNAVAILABLE', 'the audit store cannot be read or written', {
      cause,
    });
  }
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function parseCursor(cursor: string): number {
  if (typeof cursor !== 'string' || !/^(0|[1-9][0-9]{0,14})$/.test(cursor)) {
    throw new InputError('cursor is not one this API returned', { parameter: 'cursor' });
  }
  return Number(cursor);
}

function parseSince(since: string): string {
  const time = typeof since === 'string' ? Date.parse(since) : Number.NaN;
  if (Number.isNaN(time)) throw new InputError('since must be an ISO 8601 timestamp', { parameter: 'since' });
  return new Date(time).toISOString();
}

function storedEvent(text: string, index: number): AuditEvent {
  let value: unknown;
  try {
    // The store is outside the trust boundary: an event is answered only if it still has the event shape.
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!isAuditEvent(value)) throw new AuditIntegrityError('a stored audit event is malformed', { index });
  return value;
}
