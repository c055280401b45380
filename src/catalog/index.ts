/**
 * The app catalog: every microapp, its owner, its security plan and where it stands in its lifecycle
 * (draft → in_review → approved → suspended → retired), with the admission policy and reviewers deciding,
 * offboarding, unused-app notices and least-privilege suggestions from the audit trail.
 */
export {
  appStatuses,
  createCatalog,
  demoApps,
  riskLevels,
  type AdmissionRecord,
  type App,
  type AppQuery,
  type AppStatus,
  type Catalog,
  type CatalogOptions,
  type DecidingRule,
  type HistoryEntry,
  type PendingChange,
  type RiskLevel,
  type RuntimeConstraints,
} from './apps.js';
export {
  bundleDigest,
  bundleMediaTypes,
  maxBundleBytes,
  scanBundleAt,
  scanUploadedBundle,
  type BundleScan,
} from './bundle.js';
export { constraintsFor } from './constraints.js';
export { normaliseEmail } from './identity.js';
export { purposeInForce } from './rules.js';
export {
  containmentLevers,
  createLifecycle,
  type Actor,
  type ChangeOptions,
  type Lifecycle,
  type LifecycleDeps,
  type PlanInput,
  type Registration,
} from './lifecycle.js';
export {
  appSecretPrefix,
  archiveFormat,
  offboardUser,
  previewOffboard,
  readArchive,
  retireApp,
  userSecretPrefix,
  verifyArchive,
  type Archive,
  type ArchiveSummary,
  type OffboardDeps,
  type OffboardReport,
  type RetireReport,
} from './offboard.js';
export {
  deliver,
  notifyUnused,
  webhookSignature,
  signatureHeader,
  timestampHeader,
  deliveryHeader,
  type NoticeResult,
  type UnusedNotice,
  type WebhookSettings,
  type WebhookTarget,
} from './notify.js';
export { challengeAuditHook, hookChallengeType, type HookChallengeResult } from './hook-challenge.js';
export {
  appEvents,
  parseDays,
  parseSince,
  refreshUsage,
  suggestScopes,
  type AuditReader,
  type ObjectUsage,
  type ScopeSuggestion,
} from './usage.js';
export { inventoryCsv, viewOf, type AppView } from './view.js';
export { startCatalogUpkeep } from './upkeep.js';
