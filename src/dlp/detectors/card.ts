import { luhnSum } from '../checksums.js';
import { confidence, contextWords, isWordChar } from '../context.js';
import type { Finding } from '../types.js';

interface Brand {
  name: string;
  lengths: readonly [number, number];
  /** Inclusive ranges over the first `prefixLength` digits. */
  ranges: readonly (readonly [number, number])[];
  prefixLength: number;
}

// Issuer identification number (IIN) ranges of the networks a CRM note is likely to hold.
const BRANDS: readonly Brand[] = [
  { name: 'visa', lengths: [13, 19], prefixLength: 1, ranges: [[4, 4]] },
  {
    name: 'amex',
    lengths: [15, 15],
    prefixLength: 2,
    ranges: [
      [34, 34],
      [37, 37],
    ],
  },
  {
    name: 'mastercard',
    lengths: [16, 16],
    prefixLength: 4,
    ranges: [
      [2221, 2720],
      [5100, 5599],
    ],
  },
  {
    name: 'discover',
    lengths: [16, 19],
    prefixLength: 4,
    ranges: [
      [6011, 6011],
      [6440, 6599],
    ],
  },
  { name: 'jcb', lengths: [16, 19], prefixLength: 4, ranges: [[3528, 3589]] },
  {
    name: 'diners',
    lengths: [14, 19],
    prefixLength: 3,
    ranges: [
      [300, 305],
      [360, 369],
      [380, 399],
    ],
  },
  { name: 'unionpay', lengths: [16, 19], prefixLength: 2, ranges: [[62, 62]] },
  { name: 'mir', lengths: [16, 19], prefixLength: 4, ranges: [[2200, 2204]] },
  {
    name: 'maestro',
    lengths: [13, 19],
    prefixLength: 4,
    ranges: [
      [5018, 5018],
      [5020, 5020],
      [5038, 5038],
      [5893, 5893],
      [6304, 6304],
      [6759, 6759],
      [6761, 6763],
    ],
  },
];

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;

const nearCardWords = contextWords([
  'card',
  'credit',
  'debit',
  'visa',
  'mastercard',
  'amex',
  'american express',
  'discover',
  'maestro',
  'cc',
  'ccn',
  'pan',
  'cvv',
  'cvc',
  'expiry',
  'payment',
]);

/** The card network whose IIN range and length fit, or undefined. */
export function cardBrand(digits: string): string | undefined {
  for (const brand of BRANDS) {
    if (digits.length < brand.lengths[0] || digits.length > brand.lengths[1]) continue;
    const prefix = Number(digits.slice(0, brand.prefixLength));
    if (brand.ranges.some(([low, high]) => prefix >= low && prefix <= high)) return brand.name;
  }
  return undefined;
}

/** Groupings a person writes a card number in: fours with a shorter tail, or Amex/Diners 4-6-5 / 4-6-4. */
function usualGrouping(groups: readonly number[]): boolean {
  if (groups.length === 1) return true;
  if (groups.length === 3 && groups[0] === 4 && groups[1] === 6 && (groups[2] === 5 || groups[2] === 4)) {
    return true;
  }
  return groups.every((g, i) => (i < groups.length - 1 ? g === 4 : g >= 1 && g <= 4));
}

/**
 * Payment card numbers: 13-19 digits, written whole or in groups split by one space or dash, within an
 * issuer range of a known network and passing Luhn. A run of digit groups longer than a card (a card next
 * to an expiry date, or a wall of numbers) is tried at every group boundary; each window is at most 19
 * digits, so the work stays linear in the text.
 */
export function detectPaymentCards(text: string): Finding[] {
  const findings: Finding[] = [];
  // One parse per string (a separator is never a digit), so no backtracking blow-up.
  const runs = /\d+(?:[ -]\d+)*/g;
  for (let run = runs.exec(text); run !== null; run = runs.exec(text)) {
    const runStart = run.index;
    const runEnd = runStart + run[0].length;
    const groups: { start: number; end: number }[] = [];
    const groupPattern = /\d+/g;
    for (let g = groupPattern.exec(run[0]); g !== null; g = groupPattern.exec(run[0])) {
      groups.push({ start: runStart + g.index, end: runStart + g.index + g[0].length });
    }
    // A group glued to a word ("ref1", "12ab") is part of an identifier, not of a card number.
    if (isWordChar(text, runStart - 1)) groups.shift();
    if (isWordChar(text, runEnd)) groups.pop();
    const wholeRun = groups.length;
    for (let first = 0; first < groups.length; first++) {
      // Every network's range starts with 2 to 6: skip other starts before building anything.
      const lead = text.charCodeAt(groups[first]!.start);
      if (lead < 50 || lead > 54) continue;
      let digits = '';
      const lengths: number[] = [];
      for (let last = first; last < groups.length; last++) {
        const group = groups[last]!;
        digits += text.slice(group.start, group.end);
        lengths.push(group.end - group.start);
        if (digits.length > MAX_DIGITS) break;
        if (digits.length < MIN_DIGITS) continue;
        const brand = cardBrand(digits);
        if (brand === undefined || luhnSum(digits) % 10 !== 0) continue;
        const start = groups[first]!.start;
        const end = group.end;
        let score = usualGrouping(lengths) ? 0.75 : 0.55;
        // Part of a longer run of numbers: still reported, with less certainty.
        if (last - first + 1 < wholeRun) score -= 0.1;
        if (nearCardWords(text, start, end)) score += 0.2;
        findings.push({
          kind: 'payment_card',
          start,
          end,
          confidence: confidence(score),
          detector: `payment_card.${brand}`,
        });
      }
    }
  }
  return findings;
}
