/**
 * Growing the stored tree, shared by both write paths (SQLite's group commit and PostgreSQL's
 * sequencer): read the right edge inside the write transaction, append leaves with their subtree
 * hashes, and sign a checkpoint after proving the tree consistent with the latest one.
 */
import { sql } from 'kysely';
import { AuditIntegrityError, DependencyUnavailable } from '../errors/index.js';
import { CompiledShapes, type Db } from '../store/index.js';
import { openCheckpoint, signCheckpoint, type NoteSigner, type NoteVerifier } from './checkpoint.js';
import { canonicalEvent, isAuditEvent, type AuditEvent } from './event.js';
import {
  appendLeaf,
  compactRangeFrom,
  compactRangeNodes,
  consistencyProof,
  hashEquals,
  hashLeaf,
  rangeRoot,
  checkConsistency,
  type CompactRange,
} from './merkle.js';
import { getterOf, parseStoredHash, readNodes, withStoredNodes } from './nodes.js';

/** The right edge of the tree as a writer last saw it in the store. */
export interface Head {
  readonly range: CompactRange;
  readonly lastLeaf: Buffer | undefined;
  readonly lastAppendedAt: string;
}

/** One event ready to become a leaf: its canonical JSON and leaf hash. */
export interface Leaf {
  readonly canonical: string;
  readonly leaf: Buffer;
  readonly requestId: string;
  readonly appId: string | null;
}

export interface Appended {
  index: number;
  leafHash: string;
}

/** An append as asked for: the event, when, and whoever waits for it. */
export interface Asked {
  readonly event: AuditEvent;
  /** When the append was asked for (performance.now()): its wait for the store's lock counts from here. */
  readonly since: number;
  resolve(value: Appended): void;
  reject(error: unknown): void;
}

/** An event on its way into the log, encoded, with whoever waits for it. */
export interface Pending extends Leaf {
  since: number;
  resolve(value: Appended): void;
  reject(error: unknown): void;
}

/** The most events one write transaction takes. */
export const maxBatch = 1000;

/** The event as a leaf: its canonical JSON and leaf hash; TypeError for a malformed event. */
export function leafOf(event: AuditEvent): Leaf {
  const canonical = canonicalEvent(event);
  return {
    canonical,
    leaf: hashLeaf(Buffer.from(canonical, 'utf8')),
    requestId: event.request_id,
    appId: event.app_id,
  };
}

/** The batch's events as leaves; a malformed one is refused (TypeError) and left out. */
export function encodeAsked(batch: readonly Asked[]): Pending[] {
  const pending: Pending[] = [];
  for (const asked of batch) {
    try {
      pending.push({
        ...leafOf(asked.event),
        since: asked.since,
        resolve: asked.resolve,
        reject: asked.reject,
      });
    } catch (error) {
      asked.reject(error);
    }
  }
  return pending;
}

export function unavailable(message: string, cause?: unknown): DependencyUnavailable {
  return new DependencyUnavailable('AUDIT_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
}

const eventRowsPerInsert = 500;
const nodeRowsPerInsert = 1000;
/** Each append's inserts, compiled once per number of rows: batches take few distinct sizes. */
const inserts = new CompiledShapes(200);

/**
 * The store's current right edge, inside the write transaction. `cached` is used only when the store's
 * size and last leaf match it (another writer may have appended); else it is read back from stored
 * nodes, O(log n) rows.
 */
export async function loadHead(trx: Db, cached: Head | undefined): Promise<Head> {
  // One statement for the last event and the latest checkpoint size: this runs in every append.
  const { rows } =
    await sql<HeadRow>`select (select max(size) from audit_checkpoints) as checkpoint_size, e.idx, e.leaf_hash, e.created_at
     from (select 1 as one) as o
     left join (select idx, leaf_hash, created_at from audit_events order by idx desc limit 1) as e on 1 = 1`.execute(
      trx,
    );
  return headOf(trx, rows[0], cached);
}

/** The store's last event and latest checkpoint size, as loadHead's statement reads them. */
export interface HeadRow {
  readonly checkpoint_size: number | null;
  readonly idx: number | null;
  readonly leaf_hash: string | null;
  readonly created_at: string | null;
}

/** The head from a HeadRow read in `trx` (see loadHead); reads stored nodes only when `cached` is stale. */
export async function headOf(trx: Db, head: HeadRow | undefined, cached: Head | undefined): Promise<Head> {
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

/** A tree grown by some leaves: its new right edge, and the subtree hashes to store (hex). */
export interface Growth {
  readonly range: CompactRange;
  readonly nodes: Array<{ level: number; idx: number; hash: string }>;
}

/** The tree of `range` grown by `leaves` (leaf hashes, in order): pure hashing, no I/O. */
export function growTree(range: CompactRange, leaves: readonly Buffer[]): Growth {
  const nodes: Growth['nodes'] = [];
  let grown = range;
  for (const leaf of leaves) {
    grown = appendLeaf(grown, leaf, (level, idx, hash) =>
      nodes.push({ level, idx, hash: hash.toString('hex') }),
    );
  }
  return { range: grown, nodes };
}

/** A queued event as a leaf, if it is one: the sequencer hashes what it integrates itself. */
export function queuedLeaf(text: string): Leaf | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isAuditEvent(value) || canonicalEvent(value) !== text) return undefined;
  return {
    canonical: text,
    leaf: hashLeaf(Buffer.from(text, 'utf8')),
    requestId: value.request_id,
    appId: value.app_id,
  };
}

/**
 * Appends `leaves` in order after `head`, inside the caller's transaction; answers their indexes.
 * `growth`: the tree already grown by exactly these leaves (hashed on another thread).
 */
export async function appendLeaves(
  trx: Db,
  head: Head,
  leaves: readonly Leaf[],
  now: string,
  growth: Growth = growTree(
    head.range,
    leaves.map((l) => l.leaf),
  ),
): Promise<{ results: Appended[]; head: Head }> {
  const { events, results, head: next } = planAppend(head, leaves, now, growth);
  const { nodes } = growth;
  for (let i = 0; i < events.length; i += eventRowsPerInsert) {
    const rows = events.slice(i, i + eventRowsPerInsert);
    const values = rows.flatMap((r) => [r.idx, r.event, r.leaf_hash, r.request_id, r.app_id, r.created_at]);
    await trx.executeQuery(
      inserts.compile(trx, `audit_events ${rows.length}`, values, () =>
        trx.insertInto('audit_events').values(rows),
      ),
    );
  }
  for (let i = 0; i < nodes.length; i += nodeRowsPerInsert) {
    const rows = nodes.slice(i, i + nodeRowsPerInsert);
    const values = rows.flatMap((r) => [r.level, r.idx, r.hash]);
    await trx.executeQuery(
      inserts.compile(trx, `audit_nodes ${rows.length}`, values, () =>
        trx.insertInto('audit_nodes').values(rows),
      ),
    );
  }
  return { results, head: next };
}

/** An event row as audit_events stores it. */
export interface EventRow {
  idx: number;
  event: string;
  leaf_hash: string;
  request_id: string;
  app_id: string | null;
  created_at: string;
}

/** When leaves appended after `head` at `now` are stamped. */
export function appendTime(head: Head, now: string): string {
  // Append times never go backwards along the log, so `since` can be found by bisection.
  return now > head.lastAppendedAt ? now : head.lastAppendedAt;
}

/** Where `leaves` go after `head` (`growth`: the tree grown by exactly them): their rows, indexes, and the new head. */
export function planAppend(
  head: Head,
  leaves: readonly Leaf[],
  now: string,
  growth: Growth,
): { events: EventRow[]; results: Appended[]; head: Head } {
  const appendedAt = appendTime(head, now);
  const events: EventRow[] = [];
  const results: Appended[] = [];
  leaves.forEach((leaf, i) => {
    const index = head.range.size + i;
    const leafHash = leaf.leaf.toString('hex');
    events.push({
      idx: index,
      event: leaf.canonical,
      leaf_hash: leafHash,
      request_id: leaf.requestId,
      app_id: leaf.appId,
      created_at: appendedAt,
    });
    results.push({ index, leafHash });
  });
  const lastLeaf = leaves.length > 0 ? leaves[leaves.length - 1].leaf : head.lastLeaf;
  return { events, results, head: { range: growth.range, lastLeaf, lastAppendedAt: appendedAt } };
}

/**
 * Signs the store's current tree unless the latest checkpoint already covers it, after proving the
 * new tree consistent with that checkpoint from stored nodes. Never signs a smaller size.
 */
export async function signTree(
  trx: Db,
  cached: Head | undefined,
  signer: NoteSigner,
  verifier: NoteVerifier,
  now: string,
): Promise<{ note: string; head: Head }> {
  const head = await loadHead(trx, cached);
  const { size } = head.range;
  const root = rangeRoot(head.range);
  const latest = await trx
    .selectFrom('audit_checkpoints')
    .select(['size', 'note'])
    .orderBy('size', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (latest) {
    const opened = openCheckpoint(latest.note, verifier);
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
    const consistency = checkConsistency(previous.size, size, previous.root, root, proof);
    if (!consistency.ok) {
      throw new AuditIntegrityError('the audit log is not consistent with its latest signed checkpoint', {
        checkpoint_size: previous.size,
        size,
        reason: consistency.reason,
      });
    }
    if (previous.size === size) return { note: latest.note, head };
  }
  const timestamp = Math.floor(Date.parse(now) / 1000);
  const note = signCheckpoint({ origin: signer.name, size, root, timestamp }, signer);
  await trx
    .insertInto('audit_checkpoints')
    .values({ size, root_hash: root.toString('hex'), note, created_at: now })
    .execute();
  return { note, head };
}
