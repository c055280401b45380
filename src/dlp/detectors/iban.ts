import { IBAN_LENGTHS, ibanValid } from '../checksums.js';
import { confidence, contextWords, isWordChar } from '../context.js';
import type { Finding } from '../types.js';

const nearIbanWords = contextWords(['iban', 'bank', 'account', 'acct', 'bic', 'swift', 'sepa', 'transfer']);

/**
 * IBANs, whole or in groups split by single spaces. The candidate is read greedily (one character per
 * step, so no backtracking), then cut to the registered length of its country and checked with mod-97.
 */
export function detectIbans(text: string): Finding[] {
  const findings: Finding[] = [];
  const candidates = /[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}/g;
  for (let m = candidates.exec(text); m !== null; m = candidates.exec(text)) {
    const start = m.index;
    if (isWordChar(text, start - 1)) {
      candidates.lastIndex = start + 1;
      continue;
    }
    const expected = IBAN_LENGTHS[m[0].slice(0, 2).toUpperCase()];
    let end = -1;
    if (expected !== undefined) {
      // Walk to the end of the country's length, counting only alphanumerics.
      let count = 0;
      for (let i = 0; i < m[0].length; i++) {
        if (m[0][i] !== ' ') count++;
        if (count === expected) {
          end = start + i + 1;
          break;
        }
      }
    }
    if (end < 0 || isWordChar(text, end) || !ibanValid(text.slice(start, end))) {
      candidates.lastIndex = start + 1;
      continue;
    }
    const grouped = text.slice(start, end).includes(' ');
    let score = 0.85;
    if (grouped && !/^(?:\S{4} )+\S{1,4}$/.test(text.slice(start, end))) score -= 0.1;
    if (nearIbanWords(text, start, end)) score += 0.1;
    findings.push({ kind: 'iban', start, end, confidence: confidence(score), detector: 'iban' });
    candidates.lastIndex = end;
  }
  return findings;
}
