export { appResidency, regionOf, residencyConditions, transferOf, type PlanResidency } from './residency.js';
export {
  buildRunbook,
  runbookHtml,
  runbookMarkdown,
  type Runbook,
  type RunbookIncident,
  type RunbookInput,
} from './runbook.js';
export {
  Scrubber,
  scrubTables,
  survivors,
  type Row as ScrubRow,
  type ScrubReport,
  type ScrubTable,
} from './scrub.js';
/**
 * The compliance module: the governed app data store, retention purge with proof, data-subject
 * requests, and the reports that prove them offline. Everything else imports only this file.
 */
export { createAppStore, type AppStore, type StoreOwner } from './app-store.js';
export { appStoreScope, registerAppStoreRoutes } from './store-routes.js';
export type { Caller, CallRecord, Governance } from './governance.js';
export { runPurge, type PurgeDeps, type PurgeManifest, type PurgeRun } from './purge.js';
export { purgeRunsSince } from './runs.js';
export {
  buildComplianceReport,
  verifyComplianceReport,
  reportFormat,
  type ComplianceReport,
  type ReportVerdict,
} from './report.js';
export { createDsrDesk, parseDsrRequest, type CopyKeeper, type DsrDesk, type DsrRecord } from './dsr.js';
export { copyKeepersOf, keepsCopiesInGatehouse } from './plan.js';
