/**
 * The audit module: the event store and its tamper-evident Merkle log (DESIGN.md "Audit trail",
 * CONTRACT.md "Audit"). Everything else imports only this file.
 */
import type { SecretStore } from '../secrets/index.js';
import { verifierKeyOf } from './keys.js';

export type { AuditEvent, StoredTombstone, Tombstone } from './event.js';
export { canonicalJson, leafHashHex, prunedStub } from './event.js';
export { leafProvenIn, rewriteEventBodies, type BodyRewrite } from './tombstones.js';
export {
  openAuditLog,
  type AuditLog,
  type AuditLogOptions,
  type AuditEventQuery,
  type AuditEventRecord,
  type AuditEventPage,
  type AppendListener,
} from './log.js';
export { verifyStoredLog, type StoredLogReport } from './verify-store.js';
export { askWitnessedSizes, type WitnessEndpoint, type WitnessingOptions } from './witnessing.js';
export { checkQuorum, type WitnessPolicy, type QuorumReport } from './quorum.js';
export {
  cosignerFromSeed,
  formatCosignerKey,
  parseCosignerKey,
  validCosignatures,
  newWitnessSeed,
  type Cosigner,
  type Cosignature,
  type CosignatureVerifier,
} from './cosignature.js';
export {
  openCheckpoint,
  parseVerifierKey,
  splitNote,
  type Checkpoint,
  type NoteVerifier,
} from './checkpoint.js';
export { verifyConsistency } from './merkle.js';
export type { UnfinishedWrite } from './intents.js';
export { exportLog, verifyExportFile } from './export.js';
export type { VerifyReport, VerifyProblemCode } from './verify.js';
export {
  buildEvidenceBundle,
  verifyEvidenceBundle,
  evidenceBundleFormat,
  type EvidenceBundle,
  type EvidenceEvent,
  type EvidenceReport,
  type EvidenceProblemCode,
  type BuildEvidenceOptions,
} from './evidence.js';

/** The checkpoint verifier key `<origin>+<hex key id>+<base64(0x01 ‖ public key)>`; creates the key if absent. */
export function auditVerifierKey(secrets: SecretStore, origin: string): Promise<string> {
  return verifierKeyOf(secrets, origin);
}

/** The audit log's checkpoint origin: the log's name in its signed notes and its key's name. */
export const auditOrigin = 'gatehouse/audit';
