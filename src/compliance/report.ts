/**
 * Compliance reports an auditor verifies offline with the audit log's verifier key alone: the runs'
 * events (purge runs, a data-subject request's closing) with inclusion proofs against one signed
 * checkpoint, each run's manifest (whose digest its event commits to), and an inclusion proof for every
 * event body the runs rewrote, by its leaf hash.
 *
 *   { "format": "gatehouse-compliance-report", "version": 1, "kind": "purge" | "dsr", "created_at",
 *     "subject", "runs": [{ "event_index", "manifest" }], "evidence": <evidence bundle>,
 *     "leaves": [{ "index", "leaf_hash", "inclusion_proof" }], "summary": {...} }
 */
import {
  buildEvidenceBundle,
  leafProvenIn,
  verifyEvidenceBundle,
  type AuditLog,
  type EvidenceBundle,
} from '../audit/index.js';
import { committedDigest, manifestDigest } from './purge.js';

export const reportFormat = 'gatehouse-compliance-report';

/** What every run's manifest has: the event bodies it rewrote, by index and leaf hash. */
interface RunManifest {
  events: ReadonlyArray<{ index: number; leaf_hash: string; classes?: readonly string[] }>;
  documents?: ReadonlyArray<{ hash: string; classes: readonly string[] }>;
  left?: { documents: number; events: number };
}

export interface ComplianceReport {
  format: typeof reportFormat;
  version: 1;
  kind: 'purge' | 'dsr';
  created_at: string;
  subject: string;
  runs: Array<{ event_index: number; manifest: unknown }>;
  evidence: EvidenceBundle;
  leaves: Array<{ index: number; leaf_hash: string; inclusion_proof: string[] }>;
  summary: ReportSummary;
}

export interface ReportSummary {
  runs: number;
  /** Deleted documents and rewritten events per data class, over all runs. */
  counts: Record<string, { documents: number; events: number }>;
  /** What the newest run found still past retention (purge reports). */
  left?: { documents: number; events: number };
}

export type ReportVerdict =
  | { ok: true; kind: string; runs: number; leaves: number; checkpoint_size: number; summary: ReportSummary }
  | { ok: false; problem: string };

export async function buildComplianceReport(
  log: AuditLog,
  what: { kind: 'purge' | 'dsr'; subject: string; runs: Array<{ event_index: number; manifest: unknown }> },
  now: () => Date = () => new Date(),
): Promise<ComplianceReport> {
  const evidence = await buildEvidenceBundle(
    log,
    what.runs.map((r) => r.event_index),
    { subject: what.subject, now },
  );
  const size = checkpointSize(evidence.checkpoint);
  const leaves: ComplianceReport['leaves'] = [];
  for (const run of what.runs) {
    for (const event of (run.manifest as RunManifest).events) {
      leaves.push({
        index: event.index,
        leaf_hash: event.leaf_hash,
        inclusion_proof: await log.inclusionProof(event.index, size),
      });
    }
  }
  return {
    format: reportFormat,
    version: 1,
    kind: what.kind,
    created_at: now().toISOString(),
    subject: what.subject,
    runs: what.runs,
    evidence,
    leaves,
    summary: summarize(what.runs.map((r) => r.manifest as RunManifest)),
  };
}

/** Checks a report with only the verifier key: signatures, proofs, digests, counts. Never throws on input. */
export function verifyComplianceReport(report: unknown, verifierKey: string): ReportVerdict {
  // Attacker-controlled: the whole file. Shape first, then every claim against the signed checkpoint.
  if (typeof report !== 'object' || report === null) return { ok: false, problem: 'not a JSON object' };
  const r = report as Partial<ComplianceReport>;
  if (r.format !== reportFormat || r.version !== 1 || (r.kind !== 'purge' && r.kind !== 'dsr')) {
    return { ok: false, problem: 'not a Gatehouse compliance report (format, version or kind)' };
  }
  if (!Array.isArray(r.runs) || !Array.isArray(r.leaves) || typeof r.summary !== 'object') {
    return { ok: false, problem: 'the report lacks its runs, leaves or summary' };
  }
  const evidence = verifyEvidenceBundle(r.evidence, verifierKey);
  if (!evidence.ok) return { ok: false, problem: `the runs' events do not verify: ${evidence.problem}` };
  const bundle = r.evidence as EvidenceBundle;
  const manifests: RunManifest[] = [];
  for (const run of r.runs as unknown[]) {
    const { event_index: index, manifest } = (run ?? {}) as { event_index?: unknown; manifest?: unknown };
    const event = bundle.events.find((e) => e.index === index);
    if (!event) return { ok: false, problem: `run event ${String(index)} is not among the proven events` };
    let digest: string;
    try {
      digest = manifestDigest(manifest);
    } catch {
      return { ok: false, problem: `the manifest of run event ${String(index)} is not JSON` };
    }
    if (committedDigest(event.event.reason) !== digest) {
      return {
        ok: false,
        problem: `the manifest of run event ${String(index)} is not the one its event commits to`,
      };
    }
    if (!isRunManifest(manifest))
      return { ok: false, problem: `the manifest of run event ${String(index)} is malformed` };
    manifests.push(manifest);
  }
  const leaves = r.leaves as unknown[];
  for (const manifest of manifests) {
    for (const rewritten of manifest.events) {
      const leaf = leaves.find((l) => (l as { index?: unknown })?.index === rewritten.index) as
        { leaf_hash?: unknown; inclusion_proof?: unknown } | undefined;
      if (
        !leaf ||
        leaf.leaf_hash !== rewritten.leaf_hash ||
        !leafProvenIn(bundle.checkpoint, verifierKey, rewritten.index, leaf.leaf_hash, leaf.inclusion_proof)
      ) {
        return {
          ok: false,
          problem: `rewritten event ${rewritten.index} is not proven in the signed tree by its leaf hash`,
        };
      }
    }
  }
  const summary = summarize(manifests);
  if (JSON.stringify(sorted(summary.counts)) !== JSON.stringify(sorted(r.summary?.counts ?? {}))) {
    return { ok: false, problem: 'the counts per class are not those of the manifests' };
  }
  if (r.kind === 'purge' && summary.left && (summary.left.documents > 0 || summary.left.events > 0)) {
    return {
      ok: false,
      problem: `the newest run left ${summary.left.documents} documents and ${summary.left.events} event bodies past retention`,
    };
  }
  return {
    ok: true,
    kind: r.kind,
    runs: manifests.length,
    leaves: manifests.reduce((n, m) => n + m.events.length, 0),
    checkpoint_size: checkpointSize(bundle.checkpoint),
    summary,
  };
}

function summarize(manifests: readonly RunManifest[]): ReportSummary {
  const counts: ReportSummary['counts'] = {};
  const add = (classes: readonly string[] | undefined, what: 'documents' | 'events') => {
    for (const c of classes ?? ['unclassified']) (counts[c] ??= { documents: 0, events: 0 })[what] += 1;
  };
  for (const m of manifests) {
    for (const d of m.documents ?? []) add(d.classes, 'documents');
    for (const e of m.events) add(e.classes, 'events');
  }
  const newest = manifests[manifests.length - 1];
  return { runs: manifests.length, counts, ...(newest?.left && { left: newest.left }) };
}

function isRunManifest(value: unknown): value is RunManifest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    Array.isArray(m.events) &&
    m.events.every((e) => typeof e === 'object' && e !== null) &&
    (m.documents === undefined || Array.isArray(m.documents))
  );
}

function sorted(record: Record<string, unknown>): Array<[string, unknown]> {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkpointSize(note: string): number {
  return Number(note.split('\n')[1]);
}
