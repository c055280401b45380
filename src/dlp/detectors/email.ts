import { confidence, contextWords } from '../context.js';
import type { Finding } from '../types.js';

const nearEmailWords = contextWords(['email', 'e-mail', 'mail', 'contact', 'address']);

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;

function isLocalChar(c: string): boolean {
  // The characters addresses use in practice; RFC 5322 allows more, which free text rarely holds.
  return /[A-Za-z0-9._%+-]/.test(c);
}

function isDomainChar(c: string): boolean {
  return /[A-Za-z0-9.-]/.test(c);
}

/**
 * Email addresses. Rather than one regex over the whole text (the usual email regexes backtrack badly on
 * long runs of dots and letters), each `@` is expanded by hand to at most 64 characters left and 253
 * right, and the two parts are then checked: dot-atoms on the left, LDH labels and an alphabetic TLD on
 * the right.
 */
export function detectEmails(text: string): Finding[] {
  const findings: Finding[] = [];
  let previousEnd = 0;
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > previousEnd && at - start < MAX_LOCAL && isLocalChar(text[start - 1]!)) start--;
    // Punctuation that opens a sentence or quote is not part of the address.
    while (start < at && /[.%+-]/.test(text[start]!)) start++;
    let end = at + 1;
    while (end < text.length && end - at - 1 < MAX_DOMAIN && isDomainChar(text[end]!)) end++;
    // A full stop or hyphen at the end belongs to the sentence.
    while (end > at + 1 && /[.-]/.test(text[end - 1]!)) end--;
    const local = text.slice(start, at);
    const domain = text.slice(at + 1, end);
    if (!localValid(local) || !domainValid(domain)) continue;
    let score = 0.85;
    if (nearEmailWords(text, start, end)) score += 0.1;
    findings.push({ kind: 'email', start, end, confidence: confidence(score), detector: 'email' });
    previousEnd = end;
  }
  return findings;
}

function localValid(local: string): boolean {
  return local.length > 0 && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..');
}

/** Image and asset names look like addresses (`logo@2x.png`); no top-level domain is one of these. */
const fileExtensions: ReadonlySet<string> = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'svg',
  'webp',
  'avif',
  'ico',
]);

function domainValid(domain: string): boolean {
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  const tld = labels[labels.length - 1]!;
  if (!/^[A-Za-z]{2,63}$/.test(tld) || fileExtensions.has(tld.toLowerCase())) return false;
  return labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}
