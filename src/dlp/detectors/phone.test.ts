import { describe, expect, it } from 'vitest';
import { scanText } from '../index.js';
import { looksLikeDate, phoneDetector } from './phone.js';

const phones = (text: string, phoneRegions?: readonly string[]): string[] =>
  scanText(text, { kinds: ['phone'], minConfidence: 0, ...(phoneRegions ? { phoneRegions } : {}) }).map((f) =>
    text.slice(f.start, f.end),
  );

describe('phone detector', () => {
  it('catches international numbers in any region', () => {
    expect(phones('Call +44 20 7946 0958 or +1 415 555 2671.')).toEqual([
      '+44 20 7946 0958',
      '+1 415 555 2671',
    ]);
  });

  it('catches UK numbers in the ranges Ofcom reserves for drama, which the plan lists as unallocated', () => {
    expect(phones('mobile +447700900123')).toEqual(['+447700900123']);
    expect(phones('ring +44 7700 900123 after 5')).toEqual(['+44 7700 900123']);
    expect(phones('+44 1632 960123 or +44 113 496 0000')).toEqual(['+44 1632 960123', '+44 113 496 0000']);
    // Written nationally, a possible but unallocated number needs a phone word near it.
    expect(phones('mobile 07700 900123')).toEqual(['07700 900123']);
    expect(phones('order 07700 900123 shipped')).toEqual([]);
  });

  it('catches E.164 numbers of other countries, packed or grouped', () => {
    const e164 = [
      '+14155552671',
      '+4915123456789',
      '+33612345678',
      '+34612345678',
      '+393123456789',
      '+31612345678',
      '+46701234567',
      '+41791234567',
      '+353851234567',
      '+61412345678',
      '+819012345678',
      '+8613812345678',
      '+918123456789',
      '+5511987654321',
      '+27821234567',
      '+2348031234567',
      '+971501234567',
    ];
    for (const number of e164) expect(phones(`tel ${number}.`)).toEqual([number]);
    expect(phones('+33 6 12 34 56 78 / +49 30 901820 / +61 491 570 156')).toEqual([
      '+33 6 12 34 56 78',
      '+49 30 901820',
      '+61 491 570 156',
    ]);
  });

  it('does not take a + and digits of an impossible length, or an unknown country code, for a phone', () => {
    expect(phones('+4412345 and +441234567890123 and +999 123456789 and +12 34 56 78 90')).toEqual([]);
  });

  it('catches national US and GB numbers through the default regions', () => {
    expect(phones('US (415) 555-0100, UK 020 7946 0958')).toEqual(['(415) 555-0100', '020 7946 0958']);
  });

  it('catches national numbers only for the regions asked for', () => {
    expect(phones('UK 020 7946 0958', ['US'])).toEqual([]);
    expect(phones('FR 01 23 45 67 89', ['FR'])).toEqual(['01 23 45 67 89']);
  });

  it('does not catch payment card numbers', () => {
    expect(phones('4111 1111 1111 1111, 5500 0000 0000 0004, 3400 0000 0000 009')).toEqual([]);
  });

  it('does not catch dates, times or SSNs', () => {
    expect(phones('on 2024-01-15 at 10:30, 15.01.2024, 12/05/2023, 2024 01 15, ssn 078-05-1120')).toEqual([]);
  });

  it('does not catch numbers glued to letters or too short to dial', () => {
    expect(phones('ID4155550100 and ext 5550')).toEqual([]);
  });

  it('finds every number in a run too long to hand to libphonenumber whole', () => {
    const numbers = Array.from({ length: 8 }, (_, i) => `(415) 555-010${i}`);
    expect(phones(`Numbers: ${numbers.join(' ')}`)).toEqual(numbers);
  });

  it('raises confidence when "phone" is nearby', () => {
    const [plain] = scanText('x +44 20 7946 0958', { kinds: ['phone'] });
    const [near] = scanText('phone: +44 20 7946 0958', { kinds: ['phone'] });
    expect(near!.confidence).toBeGreaterThan(plain!.confidence);
  });

  it('throws a TypeError for a region libphonenumber does not know', () => {
    expect(() => phoneDetector(['XX'])).toThrow(TypeError);
    expect(() => scanText('x', { phoneRegions: ['uk'] })).toThrow(TypeError);
  });
});

describe('looksLikeDate', () => {
  it('recognises ISO, European and US dates and rejects phone-shaped groups', () => {
    expect(looksLikeDate('2024-01-15')).toBe(true);
    expect(looksLikeDate('15.01.2024')).toBe(true);
    expect(looksLikeDate('01/15/24')).toBe(true);
    expect(looksLikeDate('415 555 0100')).toBe(false);
    expect(looksLikeDate('2024-13-15')).toBe(false);
  });
});
