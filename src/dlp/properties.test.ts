import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DETECTOR_KINDS, ibanValid, luhnValid, redactText, scanText, type Finding } from './index.js';

/** The digit that makes `body` + digit pass Luhn. */
function luhnCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return String(d);
  throw new Error('unreachable');
}

/** Fragments that put detectors to work more often than uniform random strings would. */
const fragment = fc.constantFrom(
  ' ',
  '-',
  '.',
  '@',
  ':',
  '=',
  '"',
  '\n',
  '+',
  '(',
  ')',
  '/',
  '_',
  '4111',
  '1111',
  '0000',
  '5500',
  '34',
  '078',
  '05',
  '1120',
  'GB82',
  'WEST',
  'DE89',
  'AB',
  'C',
  'key',
  'token',
  'password',
  'secret',
  'card',
  'ssn',
  'iban',
  'AKIA',
  'ghp_',
  'xoxb-',
  'sk_live_',
  'eyJ',
  'AIza',
  '-----BEGIN PRIVATE KEY-----',
  'jane',
  'acme',
  'example',
  'com',
  '+44',
  '020',
  '7946',
);
const noisyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.array(fc.oneof(fragment, fc.string({ maxLength: 6 })), { maxLength: 80 }).map((parts) => parts.join('')),
);

/** Arbitrary spans inside a text of a given length, overlapping or not. */
const spansIn = (length: number): fc.Arbitrary<Finding[]> =>
  fc.array(
    fc
      .tuple(
        fc.nat(length),
        fc.nat(length),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...DETECTOR_KINDS),
      )
      .map(([a, b, confidence, kind]) => ({
        kind,
        start: Math.min(a, b),
        end: Math.max(a, b),
        confidence,
        detector: kind,
      })),
    { maxLength: 12 },
  );

describe('DLP properties', () => {
  it('scanText never throws and returns in-bounds, sorted, non-overlapping findings over the threshold', () => {
    fc.assert(
      fc.property(noisyText, (text) => {
        const found = scanText(text);
        let previousEnd = 0;
        for (const f of found) {
          expect(f.start).toBeGreaterThanOrEqual(previousEnd);
          expect(f.end).toBeGreaterThan(f.start);
          expect(f.end).toBeLessThanOrEqual(text.length);
          expect(f.confidence).toBeGreaterThanOrEqual(0.5);
          expect(f.confidence).toBeLessThanOrEqual(1);
          previousEnd = f.end;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('redactText removes every character of every finding and keeps every other one', () => {
    fc.assert(
      fc.property(
        noisyText.chain((text) => fc.tuple(fc.constant(text), spansIn(text.length))),
        ([text, findings]) => {
          const covered = new Array<boolean>(text.length).fill(false);
          for (const f of findings) for (let i = f.start; i < f.end; i++) covered[i] = true;
          let expected = '';
          for (let i = 0; i < text.length; i++) if (!covered[i]) expected += text[i];
          expect(redactText(text, findings, () => '')).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('redacting what scanText found replaces exactly those spans, once each', () => {
    fc.assert(
      fc.property(noisyText, (text) => {
        const found = scanText(text);
        // Rebuild the expected output by hand: the text between findings, one placeholder per finding.
        let expected = '';
        let cursor = 0;
        for (const f of found) {
          expected += `${text.slice(cursor, f.start)}<${f.start}>`;
          cursor = f.end;
        }
        expected += text.slice(cursor);
        expect(redactText(text, found, (f) => `<${f.start}>`)).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('always finds a Luhn-valid 16-digit Visa or Mastercard number, grouped or not, amid words', () => {
    const card = fc
      .tuple(
        fc.constantFrom('4', '51', '52', '53', '54', '55'),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 14, maxLength: 14 }),
      )
      .map(([prefix, digits]) => {
        const body = (prefix + digits.join('')).slice(0, 15);
        return body + luhnCheckDigit(body);
      });
    const words = fc
      .array(fc.constantFrom('call', 'about', 'the', 'renewal', 'Jane', 'said'), { maxLength: 6 })
      .map((w) => w.join(' '));
    fc.assert(
      fc.property(words, card, fc.boolean(), words, (before, number, grouped, after) => {
        const written = grouped ? (number.match(/.{4}/g) ?? []).join(' ') : number;
        const text = `${before} ${written} ${after}`;
        const start = before.length + 1;
        const found = scanText(text).filter((f) => f.kind === 'payment_card');
        expect(found).toHaveLength(1);
        expect(found[0]).toMatchObject({ start, end: start + written.length });
      }),
      { numRuns: 300 },
    );
  });

  it('Luhn catches every single-digit error', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 12, maxLength: 18 }),
        fc.nat(),
        fc.integer({ min: 1, max: 9 }),
        (digits, at, delta) => {
          const body = digits.join('');
          const number = body + luhnCheckDigit(body);
          const i = at % number.length;
          const changed = number.slice(0, i) + ((Number(number[i]) + delta) % 10) + number.slice(i + 1);
          expect(luhnValid(number)).toBe(true);
          expect(luhnValid(changed)).toBe(false);
        },
      ),
    );
  });

  // Mod-97 catches every substitution of a digit by a digit or a letter by a letter (the value moves by
  // d·10^k with 0 < |d| < 97). A digit swapped for a letter changes the length of the numeric string, which
  // the checksum does not guarantee to catch, so those are not part of the property.
  it('mod-97 accepts computed check digits and catches every same-class single-character substitution', () => {
    const alnum = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...alnum), minLength: 18, maxLength: 18 }),
        fc.nat(),
        fc.integer({ min: 1, max: 35 }),
        (bban, at, delta) => {
          // GB is 22 characters: country, check digits, 18 more.
          let rest = 0;
          for (const c of `${bban}GB00`) {
            const v = Number.parseInt(c, 36);
            rest = (rest * (v > 9 ? 100 : 10) + v) % 97;
          }
          const iban = `GB${String(98 - rest).padStart(2, '0')}${bban}`;
          expect(ibanValid(iban)).toBe(true);
          const i = 4 + (at % 18);
          const original = iban[i]!;
          const sameClass = /[0-9]/.test(original) ? alnum.slice(0, 10) : alnum.slice(10);
          const replacement = sameClass[(sameClass.indexOf(original) + delta) % sameClass.length]!;
          fc.pre(replacement !== original);
          const changed = iban.slice(0, i) + replacement + iban.slice(i + 1);
          expect(ibanValid(changed)).toBe(false);
        },
      ),
    );
  });
});
