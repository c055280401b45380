export type DetectorKind = 'email' | 'phone' | 'payment_card' | 'iban' | 'us_ssn' | 'uk_nino' | 'secret';

export const DETECTOR_KINDS: readonly DetectorKind[] = Object.freeze([
  'email',
  'phone',
  'payment_card',
  'iban',
  'us_ssn',
  'uk_nino',
  'secret',
]);

/**
 * Where something sensitive sits in a text, and how sure the detector is. It never carries the matched
 * text: findings go into audit events and logs, and the value must not.
 */
export interface Finding {
  kind: DetectorKind;
  /** UTF-16 offsets into the scanned text, `end` exclusive. */
  start: number;
  end: number;
  /** 0..1 */
  confidence: number;
  /** Which rule matched, e.g. `secret.aws_access_key` or `payment_card.visa`. */
  detector: string;
}

/** One detector: every candidate it validates, with its confidence, unfiltered and possibly overlapping. */
export type Detector = (text: string) => Finding[];
