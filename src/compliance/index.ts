export { appResidency, regionOf, residencyConditions, transferOf, type PlanResidency } from './residency.js';
export {
  buildRunbook,
  runbookHtml,
  runbookMarkdown,
  type Runbook,
  type RunbookIncident,
  type RunbookInput,
} from './runbook.js';
export { registerRunbookRoutes, type RunbookRouteDeps } from './routes.js';
export {
  Scrubber,
  scrubTables,
  survivors,
  type Row as ScrubRow,
  type ScrubReport,
  type ScrubTable,
} from './scrub.js';
