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

/**
 * The stored log's newest checkpoint must be witnessed. On failure, `witnessedSize` is the size of the
 * newest stored checkpoint that is: the events below it are vouched for by the witnesses.
 */
export async function checkStoredQuorum(
  db: Db,
  policy: WitnessPolicy,
): Promise<
  | { ok: true; size: number; cosignatures: readonly Cosignature[] }
  | { ok: false; problem: string; witnessedSize: number }
> {
  let newest: QuorumReport | undefined;
  // Newest first, a page at a time: usually the first checkpoint answers.
  for (let below = Number.MAX_SAFE_INTEGER; ;) {
    const page = await db
      .selectFrom('audit_checkpoints')
      .select(['size', 'note'])
      .where('size', '<', below)
      .orderBy('size', 'desc')
      .limit(100)
      .execute();
    if (page.length === 0) break;
    const sizes = page.map((row) => Number(row.size));
    const lines = await db
      .selectFrom('audit_cosignatures')
      .select(['size', 'line'])
      .where('size', 'in', sizes)
      .execute();
    for (const row of page) {
      const size = Number(row.size);
      const note = withSignatureLines(
        row.note,
        lines.filter((l) => Number(l.size) === size).map((l) => l.line),
      );
      const report = checkQuorum(note, policy);
      if (report.ok && !newest) return { ok: true, size, cosignatures: report.cosignatures };
      newest ??= report;
      if (report.ok) return { ok: false, problem: problemOf(newest), witnessedSize: size };
    }
    below = sizes[sizes.length - 1];
  }
  const problem = newest ? problemOf(newest) : 'the log has no checkpoint for the witnesses to have cosigned';
  return { ok: false, problem, witnessedSize: 0 };
}

function problemOf(report: QuorumReport): string {
  return report.ok ? '' : report.problem;
}
