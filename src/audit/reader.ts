/**
 * The read side of the audit log, the same on both backends: the auditor's event queries and proofs
 * from stored subtree hashes, and the listeners that stream appended events.
 */
import { AuditIntegrityError, DependencyUnavailable, GatehouseError, InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { isAuditEvent, parseTombstone, type AuditEvent, type Tombstone } from './event.js';
import { consistencyProof, inclusionProof } from './merkle.js';
import { withStoredNodes } from './nodes.js';

export interface AuditEventRecord {
  index: number;
  leaf_hash: string;
  event: AuditEvent;
  /** Set when the body was rewritten (pruned or pseudonymised): `event` no longer hashes to `leaf_hash`. */
  tombstone?: Tombstone;
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

/**
 * A page of the log in index order. `records` hold events whose `event` hashes to `leaf_hash`;
 * `tombstones` (present when the page has any) hold the events whose bodies were pruned or
 * pseudonymised: their leaf hashes, still in the tree, and what is left of the body.
 */
export interface AuditEventPage {
  records: AuditEventRecord[];
  tombstones?: AuditEventRecord[];
  next_cursor?: string;
}

/** Receives one appended event: its index, leaf hash and the event as stored (known fields only). */
export type AppendListener = (record: AuditEventRecord) => void;

const defaultPage = 100;
const maxPage = 1000;

export class LogReader {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async events(q: AuditEventQuery): Promise<AuditEventPage> {
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
      const page = rows.slice(0, limit).map((row): AuditEventRecord => {
        const index = Number(row.idx);
        const tombstone = parseTombstone(row.event);
        return tombstone
          ? { index, leaf_hash: row.leaf_hash, ...tombstone }
          : { index, leaf_hash: row.leaf_hash, event: storedEvent(row.event, index) };
      });
      const records = page.filter((r) => r.tombstone === undefined);
      const tombstones = page.filter((r) => r.tombstone !== undefined);
      return {
        records,
        ...(tombstones.length > 0 && { tombstones }),
        ...(rows.length > limit && { next_cursor: String(page[page.length - 1].index) }),
      };
    });
  }

  /** The first index appended at or after `since`: bisection over the monotone append times. */
  async #firstAppendedAt(since: string): Promise<number> {
    let low = 0;
    let high = await this.size();
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

  /** The number of events in the store. */
  async size(): Promise<number> {
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
      const logSize = await this.size();
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
      const logSize = await this.size();
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
}

/** The listeners of one AuditLog instance (detection streams the log through them). */
export class AppendListeners {
  readonly #listeners = new Set<AppendListener>();

  add(listener: AppendListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('onAppended needs a function');
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells every listener about appended events, given in index order. */
  notify(appended: ReadonlyArray<{ index: number; leafHash: string; canonical: string }>): void {
    if (this.#listeners.size === 0) return;
    for (const { index, leafHash, canonical } of appended) {
      // The stored form, not the caller's object: only the known fields, and nothing a listener can mutate.
      const record: AuditEventRecord = Object.freeze({
        index,
        leaf_hash: leafHash,
        event: Object.freeze(JSON.parse(canonical) as AuditEvent),
      });
      for (const listener of this.#listeners) {
        try {
          listener(record);
        } catch {
          // A listener's failure is its own to report; the append has already succeeded.
        }
      }
    }
  }
}

/** Store failures become AUDIT_UNAVAILABLE; Gatehouse errors (input, integrity) pass through. */
export async function guard<T>(work: () => Promise<T>): Promise<T> {
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
