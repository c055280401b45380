/** `verifyStoredLog`: recompute the log from the store and check every stored checkpoint and subtree hash. */
import { AuditIntegrityError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { parseVerifierKey } from './checkpoint.js';
import { IntentTracker, type UnfinishedWrite } from './intents.js';
import { matchesHex, withStoredNodes } from './nodes.js';
import { CheckpointReader, snapshotBounds, storedEvents } from './snapshot.js';
import { consistencyProof, nodeKey, rangeRoot, verifyConsistency } from './merkle.js';
import {
  newestWitnessed,
  storedCosignedCheckpoints,
  type NewestWitnessed,
  type WitnessPolicy,
} from './quorum.js';
import { LogVerifier, type VerifiedPoint, type VerifyReport } from './verify.js';

export type { VerifiedPoint } from './verify.js';

/** An intact log may still hold writes whose outcome was never recorded; they are named here. */
export type StoredLogReport = VerifyReport & {
  readonly unfinishedWrites?: readonly UnfinishedWrite[];
  /** With a witness policy: the newest checkpoint's size and the witnesses that cosigned it. */
  readonly witnessed?: {
    readonly size: number;
    readonly witnesses: readonly string[];
    readonly quorum: number;
  };
};

/**
 * `witnesses`: the newest checkpoint must also carry a quorum of their cosignatures; when it does not,
 * the first bad index is the size of the newest witnessed checkpoint (a tail re-signed without them).
 */
export async function verifyStoredLog(
  db: Db,
  verifierKey: string,
  onProgress?: (done: number, total: number) => void,
  witnesses?: WitnessPolicy,
): Promise<StoredLogReport> {
  const { report } = await verifyFrom(db, verifierKey, onProgress);
  if (!report.ok || !witnesses) return report;
  return withWitnesses(report, await newestWitnessed(storedCosignedCheckpoints(db), witnesses), witnesses);
}

/**
 * An intact log's report under a witness policy: witnessed, or failed from the size of the newest
 * witnessed checkpoint on (a tail re-signed without the witnesses). Stored logs and exports alike.
 */
export function withWitnesses(
  report: VerifyReport,
  quorum: NewestWitnessed,
  witnesses: WitnessPolicy,
): StoredLogReport {
  if (quorum.ok) {
    const witnessed = {
      size: quorum.size,
      witnesses: quorum.cosignatures.map((c) => c.witness),
      quorum: witnesses.quorum,
    };
    return { ...report, witnessed };
  }
  return {
    ok: false,
    firstBadIndex: quorum.witnessedSize,
    code: 'CHECKPOINT_NOT_WITNESSED',
    problem: `${quorum.problem}; the witnesses vouch for the first ${quorum.witnessedSize} events only`,
  };
}

/**
 * Verifies only what was appended since `from` (a point an earlier run verified; the whole log without
 * it), and that the stored tree proves the newest checkpoint consistent with `from`. `verified`: where
 * the next run can start.
 */
export function verifyAppended(
  db: Db,
  verifierKey: string,
  from?: VerifiedPoint,
): Promise<{ report: StoredLogReport; verified?: VerifiedPoint }> {
  return verifyFrom(db, verifierKey, undefined, from);
}

async function verifyFrom(
  db: Db,
  verifierKey: string,
  onProgress?: (done: number, total: number) => void,
  from?: VerifiedPoint,
): Promise<{ report: StoredLogReport; verified?: VerifiedPoint }> {
  const intents = new IntentTracker();
  const verifier = parseVerifierKey(verifierKey);
  const { size, checkpointSize } = await snapshotBounds(db);
  const start = from?.range.size ?? 0;
  const checkpoints = new CheckpointReader(db, checkpointSize, start);
  let storedNodes = new Map<string, string>();
  const log = new LogVerifier(
    verifier,
    (level, index, hash) => {
      const stored = storedNodes.get(nodeKey(level, index));
      if (stored === undefined) return 'NODE_MISSING';
      return matchesHex(hash, stored) ? undefined : 'NODE_MISMATCH';
    },
    from,
  );

  const feedCheckpoints = async () => {
    for (let next = await checkpoints.takeUpTo(log.size); next; next = await checkpoints.takeUpTo(log.size)) {
      log.checkpoint({ note: next.note, size: next.size, rootHash: next.root_hash });
    }
  };

  await feedCheckpoints();
  for await (const page of storedEvents(db, size, start)) {
    storedNodes = await nodesCompletedBy(db, log.size, log.size + page.length);
    for (const row of page) {
      log.event(row.idx, row.event, row.leaf_hash);
      intents.see(row.idx, row.event);
      await feedCheckpoints();
      if (log.done) break;
    }
    onProgress?.(log.size, Math.max(size, log.size));
    if (log.done) break;
  }
  // One checkpoint beyond the last event is enough to show a truncated tail.
  const beyond = log.done ? undefined : await checkpoints.take();
  if (beyond) log.checkpoint({ note: beyond.note, size: beyond.size, rootHash: beyond.root_hash });
  const report = log.finish();
  if (!report.ok) return { report };
  const verified = log.verified;
  if (from && verified && !(await storedTreeConsistent(db, from, verified))) {
    const problem = `the stored tree does not prove checkpoint ${start} consistent with checkpoint ${verified.range.size}`;
    return { report: { ok: false, firstBadIndex: start, code: 'NODE_MISMATCH', problem } };
  }
  const unfinishedWrites = intents.unfinished();
  return {
    report: unfinishedWrites.length > 0 ? { ...report, unfinishedWrites } : report,
    ...(verified && { verified }),
  };
}

/** The consistency proof the store serves between two verified checkpoints checks out (RFC 9162 §2.1.4). */
async function storedTreeConsistent(db: Db, older: VerifiedPoint, newer: VerifiedPoint): Promise<boolean> {
  const [m, n] = [older.range.size, newer.range.size];
  try {
    const proof = await withStoredNodes(db, (get) => consistencyProof(m, n, get));
    return verifyConsistency(m, n, rangeRoot(older.range), newer.root, proof);
  } catch (error) {
    // A missing subtree hash is damage; a store that cannot be read is an outage (thrown on).
    if (error instanceof AuditIntegrityError) return false;
    throw error;
  }
}

/** Stored interior nodes that appending leaves [begin, end) completes, keyed by nodeKey. */
async function nodesCompletedBy(db: Db, begin: number, end: number): Promise<Map<string, string>> {
  const ranges: Array<{ level: number; low: number; high: number }> = [];
  for (let level = 1; 2 ** level <= end; level++) {
    const width = 2 ** level;
    // Node (level, j) is completed by leaf (j + 1)·width − 1.
    const low = Math.ceil((begin + 1) / width) - 1;
    const high = Math.floor(end / width) - 1;
    if (low <= high) ranges.push({ level, low, high });
  }
  const nodes = new Map<string, string>();
  if (ranges.length === 0) return nodes;
  const rows = await db
    .selectFrom('audit_nodes')
    .select(['level', 'idx', 'hash'])
    .where((eb) =>
      eb.or(
        ranges.map(({ level, low, high }) =>
          eb.and([eb('level', '=', level), eb('idx', '>=', low), eb('idx', '<=', high)]),
        ),
      ),
    )
    .execute();
  for (const row of rows) nodes.set(nodeKey(Number(row.level), Number(row.idx)), row.hash);
  return nodes;
}
