/**
 * Evidence bundles: a chosen set of audit events, each with an inclusion proof against one signed
 * checkpoint, the checkpoint note and the verifier key, in one JSON document that anyone holding the
 * verifier key checks offline (incidents, offboarding archives).
 *
 *   { "format": "gatehouse-evidence-bundle", "version": 1, "created_at": ISO, "subject": "...",
 *     "checkpoint": "<signed note, with the witnesses' cosignatures>", "verifier_key": "<name>+<id>+<key>",
 *     "events": [{ "index": I, "leaf_hash": hex, "event": {...}, "inclusion_proof": [hex, ...] }] }
 *
 * The bundle's own `verifier_key` says which key signed it; verification trusts only the key the
 * verifier is given, never the one the bundle carries.
 */
import { AuditIntegrityError, InputError } from '../errors/index.js';
import { claimedSize, openCheckpoint, parseVerifierKey, type CheckpointProblem } from './checkpoint.js';
import { canonicalJson, isAuditEvent, type AuditEvent } from './event.js';
import type { AuditLog } from './log.js';
import { checkInclusion, hashLeaf, type ProofFailure } from './merkle.js';
import { matchesHex } from './nodes.js';
import { checkQuorum, type WitnessPolicy } from './quorum.js';

export const evidenceBundleFormat = 'gatehouse-evidence-bundle';

export interface EvidenceEvent {
  readonly index: number;
  readonly leaf_hash: string;
  readonly event: AuditEvent;
  readonly inclusion_proof: readonly string[];
}

export interface EvidenceBundle {
  readonly format: typeof evidenceBundleFormat;
  readonly version: 1;
  readonly created_at: string;
  /** What the bundle is evidence of, e.g. `incident inc_...` or `offboarding of bob@example.com`. */
  readonly subject: string;
  readonly checkpoint: string;
  readonly verifier_key: string;
  readonly events: readonly EvidenceEvent[];
}

export type EvidenceProblemCode =
  | 'BUNDLE_MALFORMED'
  | CheckpointProblem
  | 'EVENT_MALFORMED'
  | 'LEAF_HASH_MISMATCH'
  | 'INCLUSION_PROOF_INVALID'
  | 'EVENT_BEYOND_CHECKPOINT'
  | 'CHECKPOINT_NOT_WITNESSED';

export type EvidenceReport =
  | { readonly ok: true; readonly size: number; readonly events: number; readonly indexes: readonly number[] }
  | {
      readonly ok: false;
      readonly code: EvidenceProblemCode;
      readonly problem: string;
      /** The audit index of the first event that failed, when the failure is one event's. */
      readonly index?: number;
      /** Why an inclusion proof failed (INCLUSION_PROOF_INVALID). */
      readonly reason?: ProofFailure;
    };

export interface BuildEvidenceOptions {
  readonly subject: string;
  readonly now?: () => Date;
  /** How long to wait for a checkpoint that covers every selected event (events queued, not yet signed). */
  readonly waitMs?: number;
}

const maxBundleEvents = 10_000;
const maxProofLength = 64;
const hexHash = /^[0-9a-f]{64}$/;

/**
 * Builds a bundle of the events at `indexes` (deduplicated, in index order) from `log`: the latest signed
 * checkpoint (signed now if the log grew), each event as stored, and its inclusion proof at that size.
 * The bundle is verified before it is returned, so a bundle that leaves here verifies.
 * InputError for an index the log does not hold; AUDIT_INTEGRITY if the log cannot prove its own events.
 */
export async function buildEvidenceBundle(
  log: AuditLog,
  indexes: readonly number[],
  options: BuildEvidenceOptions,
): Promise<EvidenceBundle> {
  if (typeof options?.subject !== 'string' || options.subject.length === 0) {
    throw new TypeError('buildEvidenceBundle needs a subject');
  }
  const wanted = [...new Set(indexes)].sort((a, b) => a - b);
  if (wanted.some((i) => !Number.isSafeInteger(i) || i < 0)) {
    throw new InputError('evidence indexes must be non-negative integers', { parameter: 'indexes' });
  }
  if (wanted.length > maxBundleEvents) {
    throw new InputError(`an evidence bundle holds at most ${maxBundleEvents} events`, {
      parameter: 'indexes',
    });
  }
  const now = options.now ?? (() => new Date());
  const highest = wanted.length > 0 ? wanted[wanted.length - 1] : -1;
  const { note, size } = await coveringCheckpoint(log, highest, options.waitMs ?? 5000);
  const events: EvidenceEvent[] = [];
  for (const run of runsOf(wanted)) {
    const records = await eventsInRun(log, run);
    for (const record of records) {
      const proof = await log.inclusionProof(record.index, size);
      events.push({
        index: record.index,
        leaf_hash: record.leaf_hash,
        event: record.event,
        inclusion_proof: proof,
      });
    }
  }
  const bundle: EvidenceBundle = {
    format: evidenceBundleFormat,
    version: 1,
    created_at: now().toISOString(),
    subject: options.subject,
    checkpoint: note,
    verifier_key: log.verifierKey(),
    events,
  };
  const report = verifyEvidenceBundle(bundle, log.verifierKey());
  if (!report.ok) {
    throw new AuditIntegrityError('the audit log could not prove its own events', {
      code: report.code,
      ...(report.index === undefined ? {} : { index: report.index }),
    });
  }
  return bundle;
}

/** The latest checkpoint, once it covers index `highest` (an appended event may await its batch). */
async function coveringCheckpoint(
  log: AuditLog,
  highest: number,
  waitMs: number,
): Promise<{ note: string; size: number }> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const note = await log.latestCheckpoint();
    const size = claimedSize(note) ?? 0;
    if (size > highest) return { note, size };
    if (Date.now() >= deadline) {
      throw new InputError('the audit log holds no event at one of the requested indexes', {
        parameter: 'indexes',
        log_size: size,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Sorted indexes grouped into runs of consecutive numbers, so each run is read with one query. */
function runsOf(sorted: readonly number[]): number[][] {
  const runs: number[][] = [];
  for (const index of sorted) {
    const run = runs[runs.length - 1];
    if (run && run[run.length - 1] === index - 1 && run.length < 1000) run.push(index);
    else runs.push([index]);
  }
  return runs;
}

async function eventsInRun(log: AuditLog, run: readonly number[]) {
  const first = run[0];
  const page = await log.events({
    ...(first > 0 ? { cursor: String(first - 1) } : {}),
    limit: run.length,
  });
  const records = page.records.filter((r) => r.index <= run[run.length - 1]);
  if (records.length !== run.length || records.some((r, i) => r.index !== run[i])) {
    throw new InputError('the audit log holds no event at one of the requested indexes', {
      parameter: 'indexes',
    });
  }
  return records;
}

/**
 * Checks a bundle offline with nothing but the trusted verifier key: the checkpoint's signature, and for
 * every event that its canonical form hashes to its leaf hash and that its inclusion proof leads to the
 * signed root; with `witnesses`, that the checkpoint carries a quorum of their cosignatures. Never
 * throws on bad bundles; a verifier key or witness policy that cannot be used is an InputError.
 */
export function verifyEvidenceBundle(
  bundle: unknown,
  verifierKey: string,
  witnesses?: WitnessPolicy,
): EvidenceReport {
  const verifier = parseVerifierKey(verifierKey);
  // Attacker-controlled: the whole bundle. Shape first, bounded, before any hashing.
  if (typeof bundle !== 'object' || bundle === null || Array.isArray(bundle)) {
    return malformed('the bundle is not a JSON object');
  }
  const b = bundle as Record<string, unknown>;
  if (b.format !== evidenceBundleFormat || b.version !== 1) {
    return malformed('not a Gatehouse evidence bundle (format or version)');
  }
  if (typeof b.checkpoint !== 'string') return malformed('the bundle has no checkpoint note');
  if (!Array.isArray(b.events) || b.events.length > maxBundleEvents) {
    return malformed('the bundle has no list of events, or too many');
  }
  const opened = openCheckpoint(b.checkpoint, verifier);
  if (!opened.ok) return { ok: false, code: opened.code, problem: `checkpoint: ${opened.detail}` };
  const quorum = witnesses && checkQuorum(b.checkpoint, witnesses);
  if (quorum && !quorum.ok) return { ok: false, code: 'CHECKPOINT_NOT_WITNESSED', problem: quorum.problem };
  const { size, root } = opened.checkpoint;
  const indexes: number[] = [];
  for (const [position, item] of (b.events as unknown[]).entries()) {
    const entry = parseEntry(item);
    if (!entry) return malformed(`event entry ${position} lacks an index, event, leaf hash or proof`);
    const { index } = entry;
    if (indexes.includes(index)) return malformed(`event ${index} appears twice`);
    if (index >= size) {
      return {
        ok: false,
        code: 'EVENT_BEYOND_CHECKPOINT',
        problem: `event ${index} is beyond the checkpoint's tree of ${size} events`,
        index,
      };
    }
    if (!isAuditEvent(entry.event)) {
      return { ok: false, code: 'EVENT_MALFORMED', problem: `event ${index} is not an audit event`, index };
    }
    // The log hashes the event's canonical form, so the bundle's JSON layout does not matter.
    const text = canonicalJson(entry.event);
    const leaf = hashLeaf(Buffer.from(text, 'utf8'));
    if (!matchesHex(leaf, entry.leafHash)) {
      return {
        ok: false,
        code: 'LEAF_HASH_MISMATCH',
        problem: `event ${index} does not hash to its leaf hash`,
        index,
      };
    }
    const proof = entry.proof.map((hex) => Buffer.from(hex, 'hex'));
    const inclusion = checkInclusion(index, size, leaf, proof, root);
    if (!inclusion.ok) {
      return {
        ok: false,
        code: 'INCLUSION_PROOF_INVALID',
        problem: `event ${index} is not proven to be in the signed tree of ${size} events: ${inclusion.reason} (${inclusion.problem})`,
        reason: inclusion.reason,
        index,
      };
    }
    indexes.push(index);
  }
  return { ok: true, size, events: indexes.length, indexes };
}

function parseEntry(
  item: unknown,
): { index: number; event: unknown; leafHash: string; proof: string[] } | undefined {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
  const e = item as Record<string, unknown>;
  if (!Number.isSafeInteger(e.index) || (e.index as number) < 0) return undefined;
  if (typeof e.leaf_hash !== 'string' || !hexHash.test(e.leaf_hash)) return undefined;
  if (!Array.isArray(e.inclusion_proof) || e.inclusion_proof.length > maxProofLength) return undefined;
  if (!e.inclusion_proof.every((h): h is string => typeof h === 'string' && hexHash.test(h)))
    return undefined;
  return { index: e.index as number, event: e.event, leafHash: e.leaf_hash, proof: e.inclusion_proof };
}

function malformed(problem: string): EvidenceReport {
  return { ok: false, code: 'BUNDLE_MALFORMED', problem };
}
