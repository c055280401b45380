export {
  grantedFields,
  maskFor,
  selectReadFields,
  type Action,
  type Fieldset,
  type Principal,
  type RolePolicy,
  type RowCondition,
} from './runtime.js';
export {
  defaultPolicyDir,
  loadActivePolicySet,
  loadPolicySet,
  publishPolicySet,
  type PolicyInfo,
  type PolicySet,
} from './library.js';
export {
  judgeManifest,
  type AdmissionContext,
  type AdmissionResult,
  type AdmissionRule,
} from './admission.js';
export {
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
  type AuthorizeInput,
  type AuthorizeResult,
  type RecordRef,
  type RequestContext,
  type RuntimeAction,
} from './authorize.js';
export { ManifestInvalid, PolicyInvalid, type PolicyLocation } from './errors.js';
export { parseCases, runPolicyTests, simulatePolicies } from './testing.js';
