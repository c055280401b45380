export { defaultPolicyDir, loadPolicySet, readPolicyFiles, readPolicyTestFiles } from './files.js';
export {
  loadActivePolicySet,
  publishAuditEvent,
  publishedVersion,
  publishPolicyFiles,
  publishPolicySet,
  publishReason,
  type Publication,
} from './publication.js';
export { importPolicyDir, type PolicyVersions } from './versions.js';
