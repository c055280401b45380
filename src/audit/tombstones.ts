/**
 * Rewriting event bodies in place while their leaf hashes stay: the retention purge prunes bodies past
 * their class's retention, a data subject's erasure pseudonymises the events about them. The tree, the
 * checkpoints and every proof are unchanged; the log verifier takes a tombstone's stored leaf hash as is.
 */
import type { Db } from '../store/index.js';
import { openCheckpoint, parseVerifierKey } from './checkpoint.js';
import { tombstoneText, type StoredTombstone } from './event.js';
import { verifyInclusion } from './merkle.js';
import { guard } from './reader.js';

export interface BodyRewrite {
  readonly index: number;
  /** The leaf hash the event was read with: a row that no longer has it is left alone. */
  readonly leafHash: string;
  readonly body: StoredTombstone;
}

/** Stores each rewrite in one transaction; answers the indexes rewritten. */
export function rewriteEventBodies(db: Db, rewrites: readonly BodyRewrite[]): Promise<number[]> {
  return guard(() =>
    db.transaction().execute(async (trx) => {
      const done: number[] = [];
      for (const rewrite of rewrites) {
        const result = await trx
          .updateTable('audit_events')
          .set({ event: tombstoneText(rewrite.body) })
          .where('idx', '=', rewrite.index)
          .where('leaf_hash', '=', rewrite.leafHash)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 1) done.push(rewrite.index);
      }
      return done;
    }),
  );
}

/**
 * Whether the leaf hash `leafHash` sits at `index` of the tree a signed checkpoint commits to: how a
 * pruned or pseudonymised event stays provable offline, by its hash alone. Never throws on bad input.
 */
export function leafProvenIn(
  checkpoint: string,
  verifierKey: string,
  index: number,
  leafHash: unknown,
  proof: unknown,
): boolean {
  // Attacker-controlled: everything but the verifier key comes from a report file.
  if (!Number.isSafeInteger(index) || index < 0 || typeof leafHash !== 'string' || !hex.test(leafHash)) {
    return false;
  }
  if (
    !Array.isArray(proof) ||
    proof.length > 64 ||
    !proof.every((h) => typeof h === 'string' && hex.test(h))
  ) {
    return false;
  }
  const opened = openCheckpoint(checkpoint, parseVerifierKey(verifierKey));
  if (!opened.ok || index >= opened.checkpoint.size) return false;
  return verifyInclusion(
    index,
    opened.checkpoint.size,
    Buffer.from(leafHash, 'hex'),
    (proof as string[]).map((h) => Buffer.from(h, 'hex')),
    opened.checkpoint.root,
  );
}

const hex = /^[0-9a-f]{64}$/;
