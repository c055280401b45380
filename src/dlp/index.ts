export { maskValue, type FieldValue, type Mask } from './mask.js';
export { DETECTOR_KINDS, type DetectorKind, type Finding } from './types.js';
export { luhnValid, ibanValid } from './checksums.js';
export { scanText, MAX_SCAN_LENGTH, DEFAULT_MIN_CONFIDENCE, type ScanOptions } from './scan.js';
export {
  redactText,
  applyDlp,
  UNSCANNED_MARKER,
  type DlpAction,
  type DlpRule,
  type DlpResult,
} from './redact.js';
export { scoreDetectors, type DetectorScore, type LabelledSample } from './evaluate.js';
