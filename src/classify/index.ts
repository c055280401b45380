/**
 * The classify module: the data class of every CRM field (public, internal, pii, financial, health,
 * secret) from the connector's metadata, raised by DLP sampling of real values (a free-text field that
 * holds e-mails is pii), and overridden by admins with a reason that goes into the audit trail.
 */
export {
  dataClasses,
  effectiveClass,
  isDataClass,
  isFreeText,
  kindClass,
  sampledClass,
  type Evidence,
} from './classes.js';
export {
  defaultSampleSize,
  sampleFields,
  sampleObject,
  type FieldSample,
  type SamplingOptions,
} from './sample.js';
export { classificationTable, effectiveClasses, type FieldClassification } from './table.js';
export {
  changeOverride,
  parseFieldRef,
  type AuditSink,
  type FieldRef,
  type OverrideRequest,
} from './overrides.js';
