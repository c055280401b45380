import { confidence, contextWords } from '../context.js';
import type { Finding } from '../types.js';

const nearSsnWords = contextWords(['ssn', 'ss#', 'social security', 'ssa', 'taxpayer', 'tin']);

/** Area, group and serial numbers the SSA never issues. */
export function ssnPossible(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  return a !== 0 && a !== 666 && a < 900 && group !== '00' && serial !== '0000';
}

/**
 * US Social Security numbers: AAA-GG-SSSS with two separators (dash or space, the same or mixed: the
 * scan's normalisation has made dots, slashes and Unicode dashes a dash), or nine bare digits.
 * Impossible ranges are dropped. Nine bare digits are too common to report without the word "SSN" or
 * similar nearby, so they start below the default threshold.
 */
export function detectUsSsns(text: string): Finding[] {
  const findings: Finding[] = [];
  const pattern = /(?<![\w-])(\d{3})([- ]?)(\d{2})([- ]?)(\d{4})(?![\w-])/g;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    // One separator without the other is not how anyone writes an SSN.
    if ((m[2] === '') !== (m[4] === '')) continue;
    if (!ssnPossible(m[1]!, m[3]!, m[5]!)) continue;
    const start = m.index;
    const end = start + m[0].length;
    const separators = `${m[2]}${m[4]}`;
    let score = separators === '--' ? 0.65 : separators === '' ? 0.3 : separators === '  ' ? 0.5 : 0.55;
    if (nearSsnWords(text, start, end)) score += 0.3;
    findings.push({ kind: 'us_ssn', start, end, confidence: confidence(score), detector: 'us_ssn' });
  }
  return findings;
}

const nearNinoWords = contextWords(['ni', 'nino', 'nin', 'national insurance', 'ni number', 'hmrc']);

// First letter never D, F, I, Q, U or V; second letter never D, F, I, O, Q, U or V.
const NINO_FIRST = 'ABCEGHJKLMNOPRSTWXYZ';
const NINO_SECOND = 'ABCEGHJKLMNPRSTWXYZ';
// Combinations HMRC does not allocate.
const NINO_UNUSED_PREFIXES = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

/** True when a two-letter prefix can start an allocated UK National Insurance number. */
export function ninoPrefixValid(prefix: string): boolean {
  const p = prefix.toUpperCase();
  return (
    p.length === 2 &&
    NINO_FIRST.includes(p[0]!) &&
    NINO_SECOND.includes(p[1]!) &&
    !NINO_UNUSED_PREFIXES.has(p)
  );
}

/**
 * UK National Insurance numbers: a valid two-letter prefix, six digits (optionally in pairs split by
 * spaces) and the suffix A-D. Without the suffix the shape is weaker and needs a context word.
 */
export function detectUkNinos(text: string): Finding[] {
  const findings: Finding[] = [];
  const pattern = /(?<![A-Za-z0-9])([A-Za-z]{2}) ?(\d{2}) ?(\d{2}) ?(\d{2})(?: ?([A-Da-d]))?(?![A-Za-z0-9])/g;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    if (!ninoPrefixValid(m[1]!)) continue;
    const start = m.index;
    const end = start + m[0].length;
    let score = m[5] === undefined ? 0.35 : 0.7;
    // Written in lower case it is as likely to be words and numbers that happen to line up.
    if (m[1] !== m[1]!.toUpperCase()) score -= 0.15;
    if (nearNinoWords(text, start, end)) score += 0.25;
    findings.push({ kind: 'uk_nino', start, end, confidence: confidence(score), detector: 'uk_nino' });
  }
  return findings;
}
