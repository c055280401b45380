import { describe, expect, it } from 'vitest';
import { applyDlp, scanText } from './index.js';
import { normalizeForScan, originalSpan } from './normalize.js';

/** The evasions that stored card numbers and SSNs on main (issue 15, item 4), each by name. */
const card = '4111111111111111';
const evasions: ReadonlyArray<[string, string]> = [
  ['dots', '4111.1111.1111.1111'],
  ['slashes', '4111/1111/1111/1111'],
  ['double spaces', '4111  1111  1111  1111'],
  ['non-breaking spaces', '4111\u00a01111\u00a01111\u00a01111'],
  ['narrow no-break spaces', '4111\u202f1111\u202f1111\u202f1111'],
  ['zero-width spaces', '4111\u200b1111\u200b1111\u200b1111'],
  ['zero-width joiners inside groups', '41\u200d11 11\u200c11 1111 1\u2060111'],
  ['soft hyphens', '4111\u00ad1111\u00ad1111\u00ad1111'],
  ['en dashes', '4111\u20131111\u20131111\u20131111'],
  ['minus signs', '4111\u22121111\u22121111\u22121111'],
  [
    'fullwidth digits',
    '\uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11',
  ],
  [
    'Arabic-Indic digits',
    '\u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661',
  ],
  [
    'Devanagari digits',
    '\u096a\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967\u0967',
  ],
  ['mathematical bold digits', '\u{1d7d2}\u{1d7cf}\u{1d7cf}\u{1d7cf} 1111 1111 1111'],
];

describe('DLP normalisation before detection', () => {
  it.each(evasions)(
    'finds a card number written with %s, and redacts exactly its characters',
    (_name, written) => {
      const text = `pay with ${written} today`;
      const [found] = scanText(text, { kinds: ['payment_card'] });
      expect(found?.kind).toBe('payment_card');
      expect(text.slice(found?.start, found?.end)).toBe(written);
      expect(applyDlp(text, [{ kinds: ['payment_card'], action: 'redact' }]).text).toBe(
        'pay with [redacted:payment_card] today',
      );
    },
  );

  it.each([
    ['dots', '078.05.1120'],
    ['mixed dash and space', '078-05 1120'],
    ['mixed dot and slash', '078.05/1120'],
    ['non-breaking spaces', '078\u00a005\u00a01120'],
    ['em dashes', '078\u201405\u20141120'],
    ['fullwidth digits', '\uff10\uff17\uff18-\uff10\uff15-\uff11\uff11\uff12\uff10'],
  ])('finds an SSN written with %s', (_name, written) => {
    const text = `SSN ${written} on file`;
    const found = scanText(text, { kinds: ['us_ssn'] });
    expect(found.map((f) => text.slice(f.start, f.end))).toEqual([written]);
  });

  it('maps every normalised character back to where it was written', () => {
    const text = 'a\u200b\uff11\u00a0\u00a0b';
    const normalized = normalizeForScan(text);
    expect(normalized.text).toBe('a1 b');
    expect([...normalized.origin]).toEqual([0, 2, 3, 5, 6]);
    expect(originalSpan(normalized, 1, 2)).toEqual([2, 3]);
    expect(normalizeForScan(card).text).toBe(card);
  });

  it('keeps text that needs nothing as it is, and leaves decimals and dates alone for the detectors to judge', () => {
    expect(normalizeForScan('plain text, 12 items').text).toBe('plain text, 12 items');
    expect(normalizeForScan('3.14 and 2024/05/12').text).toBe('3-14 and 2024-05-12');
    expect(scanText('release 2024.05.12 build 1715512345678')).toEqual([]);
  });
});
