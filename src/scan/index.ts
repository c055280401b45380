/**
 * The scan module: checks a microapp bundle (folder, .zip, .tgz) before approval for embedded
 * secrets, calls that bypass the gateway and unpinned dependencies. `scanSummary` is what the
 * admission policies read (`context.scan`); the catalog calls both at registration and approval.
 */
export { scanBundle, scanSummary } from './scan.js';
export { formatReport } from './format.js';
export { BundleInvalid } from './errors.js';
export {
  defaultScanLimits,
  severities,
  type BundleKind,
  type ScanFinding,
  type ScanLimits,
  type ScanOptions,
  type ScanProgress,
  type ScanReport,
  type ScanSummary,
  type Severity,
} from './types.js';
