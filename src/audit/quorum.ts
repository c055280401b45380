/**
 * Witness quorum: a checkpoint counts as witnessed when at least `quorum` of the trusted witnesses
 * cosigned it. A log truncated and re-signed by someone holding its key has no such checkpoint beyond
 * what the witnesses saw: they refuse a checkpoint that is not consistent with the one they cosigned.
 */
import { InputError } from '../errors/index.js';
import type { Db } from '../store/index.js';
import { parseCosignerKey, validCosignatures, withSignatureLines, type Cosignature } from './cosignature.js';
import { claimedSize } from './checkpoint.js';

/** The witnesses a verifier trusts (cosignature/v1 verifier keys) and how many must have cosigned. */
export interface WitnessPolicy {
  readonly witnesses: readonly string[];
  readonly quorum: number;
}

export type QuorumReport =
  | { readonly ok: true; readonly cosignatures: readonly Cosignature[] }
  | { readonly ok: false; readonly cosignatures: readonly Cosignature[]; readonly problem: string };

/** Checks `note` carries a quorum of valid cosignatures; InputError for a policy that cannot be met. */
export function checkQuorum(note: string, policy: WitnessPolicy): QuorumReport {
  const verifiers = policy.witnesses.map((key) => parseCosignerKey(key));
  if (!Number.isSafeInteger(policy.quorum) || policy.quorum < 1 || policy.quorum > verifiers.length) {
    throw new InputError('the witness quorum must be between 1 and the number of witness keys', {
      parameter: 'quorum',
    });
  }
  const cosignatures = validCosignatures(note, verifiers);
  if (cosignatures.length >= policy.quorum) return { ok: true, cosignatures };
  return {
    ok: false,
    cosignatures,
    problem: `checkpoint ${claimedSize(note) ?? '?'} has ${cosignatures.length} of the ${policy.quorum} witness cosignatures required`,
  };
}

/** The newest checkpoint witnessed, or why not and the size of the newest that is (0: none). */
export type NewestWitnessed =
  | { readonly ok: true; readonly size: number; readonly cosignatures: readonly Cosignature[] }
  | { readonly ok: false; readonly problem: string; readonly witnessedSize: number };

/**
 * Checkpoints, newest first, page by page: the newest must carry the quorum; on failure,
 * `witnessedSize` is the size of the newest that does (the events below it are vouched for).
 */
export async function newestWitnessed(
  pages: AsyncIterable<readonly { readonly size: number; readonly note: string }[]>,
  policy: WitnessPolicy,
): Promise<NewestWitnessed> {
  let newest: QuorumReport | undefined;
  for await (const page of pages) {
    for (const { size, note } of page) {
      const report = checkQuorum(note, policy);
      if (report.ok && !newest) return { ok: true, size, cosignatures: report.cosignatures };
      newest ??= report;
      if (report.ok) return { ok: false, problem: problemOf(newest), witnessedSize: size };
    }
  }
  const problem = newest ? problemOf(newest) : 'the log has no checkpoint for the witnesses to have cosigned';
  return { ok: false, problem, witnessedSize: 0 };
}

/** The stored log's checkpoints with their cosignatures, newest first, a page at a time. */
export async function* storedCosignedCheckpoints(
  db: Db,
): AsyncGenerator<readonly { size: number; note: string }[]> {
  for (let below = Number.MAX_SAFE_INTEGER; ;) {
    const page = await db
      .selectFrom('audit_checkpoints')
      .select(['size', 'note'])
      .where('size', '<', below)
      .orderBy('size', 'desc')
      .limit(100)
      .execute();
    if (page.length === 0) return;
    const sizes = page.map((row) => Number(row.size));
    const lines = await db
      .selectFrom('audit_cosignatures')
      .select(['size', 'line'])
      .where('size', 'in', sizes)
      .execute();
    yield page.map((row) => ({
      size: Number(row.size),
      note: withSignatureLines(
        row.note,
        lines.filter((l) => Number(l.size) === Number(row.size)).map((l) => l.line),
      ),
    }));
    below = sizes[sizes.length - 1];
  }
}

function problemOf(report: QuorumReport): string {
  return report.ok ? '' : report.problem;
}
