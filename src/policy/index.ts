export {
  grantedFields,
  maskFor,
  selectReadFields,
  type Action,
  type Fieldset,
  type Principal,
  type Residency,
  type RolePolicy,
  type RowCondition,
} from './runtime.js';
export {
  buildCandidate,
  candidateFiles,
  defaultPolicyDir,
  loadActivePolicySet,
  loadPolicySet,
  publishedVersion,
  publishAuditEvent,
  publishPolicyFiles,
  publishPolicySet,
  publishReason,
  readPolicyTestFiles,
  readPolicyFiles,
  type PolicyFile,
  type PolicyInfo,
  type PolicySet,
  type Publication,
  type PublishGate,
} from './library.js';
export {
  judgeManifest,
  type AdmissionContext,
  type AdmissionResult,
  type AdmissionScan,
  type AdmissionRule,
} from './admission.js';
export {
  dataClasses,
  enrichManifest,
  parseManifest,
  type Enrichment,
  type Manifest,
  type ManifestContext,
} from './manifest.js';
export {
  assertAuthorized,
  authorizeRequest,
  clearPolicyCaches,
  compileRowFilter,
  policyCacheStats,
  regionField,
  type AuthorizeInput,
  type AuthorizeResult,
  type RecordRef,
  type RequestContext,
  type RuntimeAction,
} from './authorize.js';
export { ManifestInvalid, PolicyInvalid, PolicyTestsFailed, type PolicyLocation } from './errors.js';
export {
  parseCaseFile,
  parseCases,
  runPolicyTests,
  runTestFiles,
  simulatePolicies,
  type CaseResult,
} from './testing.js';
export {
  DecisionReplay,
  recordDecision,
  sinceTime,
  type ChangeGroup,
  type RecordedDecision,
  type RecordedSimulation,
} from './decisions.js';
export {
  openDecisionLog,
  simulateRecorded,
  type DecisionLog,
  type DecisionLogOptions,
} from './decision-log.js';
export { importPolicyDir, type PolicyVersions } from './versions.js';
export { policyMigrations } from './migrations.js';
