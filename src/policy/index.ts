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
  buildPolicySet,
  candidateFiles,
  POLICY_KINDS,
  policyVersion,
  SCHEMA_FILE,
  testLibrary,
  type PolicyFile,
  type PolicyInfo,
  type PolicySet,
  type PublishedTests,
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
  createPolicyCaches,
  regionField,
  type AuthorizeInput,
  type AuthorizeResult,
  type PolicyCaches,
  type RecordRef,
  type RequestContext,
  type RuntimeAction,
} from './authorize.js';
export { ManifestInvalid, PolicyInvalid, PolicyTestsFailed, type PolicyLocation } from './errors.js';
export { parseCases, runPolicyTests, runTestFiles, simulatePolicies, type CaseResult } from './testing.js';
export {
  DecisionReplay,
  parseRecordedInput,
  recordDecision,
  sinceTime,
  type ChangeGroup,
  type RecordedDecision,
  type RecordedInput,
  type RecordedSimulation,
} from './decisions.js';
