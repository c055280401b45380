import { detectPaymentCards } from './detectors/card.js';
import { detectEmails } from './detectors/email.js';
import { detectIbans } from './detectors/iban.js';
import { detectUkNinos, detectUsSsns } from './detectors/national-id.js';
import { DEFAULT_PHONE_REGIONS, phoneDetector } from './detectors/phone.js';
import { detectSecrets } from './detectors/secret.js';
import { normalizeForScan, originalSpan } from './normalize.js';
import { DETECTOR_KINDS, type Detector, type DetectorKind, type Finding } from './types.js';

/**
 * Only the first 64 Ki UTF-16 code units of a text are scanned: detection is linear, but a note body has
 * no business being larger, and a bound keeps one request from buying unbounded CPU. `applyDlp` treats
 * whatever lies beyond as unscanned and fails closed on it.
 */
export const MAX_SCAN_LENGTH = 64 * 1024;

export const DEFAULT_MIN_CONFIDENCE = 0.5;

export interface ScanOptions {
  /** Detectors to run; all when absent. */
  kinds?: readonly DetectorKind[];
  /** Findings below this confidence are dropped before overlaps are resolved. Default 0.5. */
  minConfidence?: number;
  /** Regions tried for phone numbers written without `+`; default US and GB. */
  phoneRegions?: readonly string[];
}

const defaultPhones = phoneDetector(DEFAULT_PHONE_REGIONS);

const DETECTORS: Readonly<Record<Exclude<DetectorKind, 'phone'>, Detector>> = {
  email: detectEmails,
  payment_card: detectPaymentCards,
  iban: detectIbans,
  us_ssn: detectUsSsns,
  uk_nino: detectUkNinos,
  secret: detectSecrets,
};

/**
 * Finds sensitive values in a text. Findings are sorted by position and never overlap: where two
 * candidates share characters, the more confident one is kept, then the longer, then the earlier.
 */
export function scanText(text: string, options: ScanOptions = {}): Finding[] {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const kinds = checkKinds(options.kinds ?? DETECTOR_KINDS);
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  if (typeof minConfidence !== 'number' || !(minConfidence >= 0 && minConfidence <= 1)) {
    throw new TypeError('minConfidence must be a number from 0 to 1');
  }
  const phones = options.phoneRegions ? phoneDetector(options.phoneRegions) : defaultPhones;
  const scanned = text.length > MAX_SCAN_LENGTH ? text.slice(0, MAX_SCAN_LENGTH) : text;
  // Detectors read the normalised text; findings are reported at the original's offsets.
  const normalized = normalizeForScan(scanned);
  const candidates: Finding[] = [];
  for (const kind of kinds) {
    const detect = kind === 'phone' ? phones : DETECTORS[kind];
    for (const f of detect(normalized.text)) {
      if (f.confidence < minConfidence) continue;
      const [start, end] = originalSpan(normalized, f.start, f.end);
      candidates.push({ ...f, start, end });
    }
  }
  return resolveOverlaps(candidates);
}

export function checkKinds(kinds: readonly DetectorKind[]): ReadonlySet<DetectorKind> {
  if (!Array.isArray(kinds)) throw new TypeError('kinds must be an array of detector kinds');
  for (const kind of kinds) {
    if (!DETECTOR_KINDS.includes(kind)) throw new TypeError(`unknown detector kind: ${String(kind)}`);
  }
  return new Set(kinds);
}

/**
 * Greedy by priority: take candidates from most to least confident (then longest, then earliest) and keep
 * each one that touches none already kept. Kept spans sit in an array sorted by start, so the overlap
 * check is a binary search.
 */
export function resolveOverlaps(candidates: readonly Finding[]): Finding[] {
  const ordered = [...candidates].sort(
    (a, b) => b.confidence - a.confidence || b.end - b.start - (a.end - a.start) || a.start - b.start,
  );
  const kept: Finding[] = [];
  for (const f of ordered) {
    if (f.end <= f.start) continue;
    // First kept span starting at or after f.start; only it and the one before can overlap f.
    let low = 0;
    let high = kept.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (kept[mid]!.start < f.start) low = mid + 1;
      else high = mid;
    }
    const before = kept[low - 1];
    const after = kept[low];
    if ((before && before.end > f.start) || (after && after.start < f.end)) continue;
    kept.splice(low, 0, f);
  }
  return kept;
}
