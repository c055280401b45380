import { findPhoneNumbersInText, isSupportedCountry, type CountryCode } from 'libphonenumber-js';
import { luhnValid } from '../checksums.js';
import { confidence, contextWords, isWordChar } from '../context.js';
import type { Detector, Finding } from '../types.js';
import { cardBrand } from './card.js';

/** Regions tried for numbers written without `+` (numbers with `+` need none). */
export const DEFAULT_PHONE_REGIONS: readonly CountryCode[] = Object.freeze(['US', 'GB'] as CountryCode[]);

/** A run longer than this (several numbers in a row, a wall of digits) is read in overlapping windows. */
const MAX_RUN_LENGTH = 80;
const WINDOW = 48;
const STEP = 24;
/**
 * libphonenumber costs 0.3-3 ms per call (the most on walls of short digit groups); this caps the phone
 * work on one text at well under a second whatever it holds. A note with 100 numbers needs 200 calls.
 * Past the budget, phone numbers are no longer looked for: phones are the least sensitive kind here.
 */
const MAX_CALLS = 256;

const nearPhoneWords = contextWords([
  'phone',
  'tel',
  'telephone',
  'mobile',
  'cell',
  'call',
  'fax',
  'whatsapp',
  'sms',
  'contact',
]);

/** Checks regions once, at creation: a typo in a region is a configuration mistake. */
export function phoneDetector(regions: readonly string[] = DEFAULT_PHONE_REGIONS): Detector {
  for (const region of regions) {
    if (typeof region !== 'string' || !isSupportedCountry(region)) {
      throw new TypeError(`unknown phone region: ${String(region)}`);
    }
  }
  const national = [...regions] as CountryCode[];
  return (text) => detectPhones(text, national);
}

/**
 * Phone numbers through libphonenumber's `findPhoneNumbersInText`, judged against each region's
 * numbering plan (phoneScore). Only short runs of digits and phone punctuation are handed to it; numbers
 * glued to words, and dates and card numbers that happen to be numbers somewhere, are dropped.
 */
function detectPhones(text: string, regions: readonly CountryCode[]): Finding[] {
  const found = new Map<string, Finding>();
  let calls = 0;
  // Greedy over one character class, then back to the last digit: linear in the run.
  const runs = /[+(]?\d(?:[\d ().\-\u00a0]*\d)?/g;
  for (let run = runs.exec(text); run !== null && calls < MAX_CALLS; run = runs.exec(text)) {
    const digits = run[0].replace(/\D/g, '').length;
    if (digits < 7) continue;
    for (const [from, to] of windows(run[0])) {
      // No numbering plan is written in single digits ("1 2 3 4"): skip such walls without spending budget.
      if (!/\d\d/.test(run[0].slice(from, to))) continue;
      const sliceStart = Math.max(0, run.index + from - 1);
      const slice = text.slice(sliceStart, run.index + to + 1);
      const attempts: (CountryCode | undefined)[] = run[0][from] === '+' ? [undefined] : [...regions];
      for (const region of attempts) {
        if (calls++ >= MAX_CALLS) break;
        // `extended` also answers numbers of a possible length that the plan does not list as allocated:
        // reserved and fictional ranges (UK +44 7700 900xxx), or ranges newer than the metadata.
        const numbers = findPhoneNumbersInText(slice, { defaultCountry: region, extended: true });
        for (const n of numbers) {
          const start = sliceStart + n.startsAt;
          const end = sliceStart + n.endsAt;
          const key = `${start}:${end}`;
          if (found.has(key)) continue;
          // Glued to a word ("ID4155550100", "ORD-2024-000123") it is an identifier, not a number to dial.
          if (isWordChar(text, start - 1) || isWordChar(text, end)) continue;
          if (text[start - 1] === '-' && isWordChar(text, start - 2)) continue;
          const matched = text.slice(start, end);
          if (looksLikeDate(matched) || looksLikeCard(matched) || inTimestamp(text, matched, end)) continue;
          // A national number is written with its trunk prefix where the plan has one (GB: 020 …);
          // ten bare digits without it are an epoch time or an id far more often than a UK phone.
          if (region !== undefined && region !== 'US' && !matched.replace(/\D/g, '').startsWith('0'))
            continue;
          const score = phoneScore(
            /^(?:\+|00)/.test(matched),
            n.number.isValid(),
            nearPhoneWords(text, start, end),
          );
          if (score === undefined) continue;
          found.set(key, { kind: 'phone', start, end, confidence: confidence(score), detector: 'phone' });
        }
      }
    }
  }
  return [...found.values()];
}

/**
 * A number written with its country code is a phone if its length is possible there; one written
 * nationally must be valid in the region's plan, or merely possible with a phone word near it (a wall
 * of digits of the right length is not a phone on its own).
 */
function phoneScore(international: boolean, valid: boolean, nearWords: boolean): number | undefined {
  const context = nearWords ? 0.2 : 0;
  if (international) return (valid ? 0.7 : 0.6) + context;
  if (valid) return 0.55 + context;
  return nearWords ? 0.35 + context : undefined;
}

/** [from, to) windows over a run: the run itself when short, else windows that start after a space. */
function windows(run: string): [number, number][] {
  if (run.length <= MAX_RUN_LENGTH) return [[0, run.length]];
  const out: [number, number][] = [];
  for (let from = 0; from < run.length;) {
    const to = Math.min(run.length, from + WINDOW);
    out.push([from, to]);
    if (to === run.length) break;
    let next = from + STEP;
    while (next < run.length && run[next - 1] !== ' ') next++;
    from = next;
  }
  return out;
}

/** 2024-01-15, 15.01.2024, 01/15/24, 2024 01 15: three parts, a year and a plausible month and day. */
export function looksLikeDate(value: string): boolean {
  const m = /^(\d{1,4})[-./ ](\d{1,2})[-./ ](\d{1,4})$/.exec(value.trim());
  if (!m) return false;
  const [a, b, c] = [m[1]!, m[2]!, m[3]!];
  const month = (v: string): boolean => Number(v) >= 1 && Number(v) <= 12;
  const day = (v: string): boolean => Number(v) >= 1 && Number(v) <= 31;
  if (a.length === 4) return c.length <= 2 && month(b) && day(c);
  if (a.length <= 2 && (c.length === 2 || c.length === 4)) {
    return (day(a) && month(b)) || (month(a) && day(b));
  }
  return false;
}

/** `2024-05-12 10` of `2024-05-12 10:30:00`: a date with an hour, or a number right before `:mm`. */
function inTimestamp(text: string, matched: string, end: number): boolean {
  return /^\d{4}-\d{2}-\d{2}/.test(matched) || (text[end] === ':' && /\d/.test(text[end + 1] ?? ''));
}

function looksLikeCard(value: string): boolean {
  const digits = value.replace(/\D/g, '');
  return digits.length >= 13 && digits.length <= 19 && cardBrand(digits) !== undefined && luhnValid(digits);
}
