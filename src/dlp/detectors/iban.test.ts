import { describe, expect, it } from 'vitest';
import { scanText } from '../index.js';

const ibans = (text: string, minConfidence = 0.5): string[] =>
  scanText(text, { kinds: ['iban'], minConfidence }).map((f) => text.slice(f.start, f.end));

describe('IBAN detector', () => {
  it('catches GB and DE IBANs, grouped and compact, stopping at the country length', () => {
    const text = 'Pay GB82 WEST 1234 5698 7654 32 or DE89370400440532013000 and thanks';
    expect(ibans(text)).toEqual(['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000']);
  });

  it('does not catch an IBAN with one digit changed', () => {
    expect(ibans('GB82 WEST 1234 5698 7654 33, DE89 3704 0044 0532 0130 01', 0)).toEqual([]);
  });

  it('does not catch an IBAN that runs on into more alphanumerics', () => {
    expect(ibans('GB82WEST12345698765432X', 0)).toEqual([]);
  });

  it('does not catch a code that only looks like an IBAN (country without IBANs)', () => {
    expect(ibans('US82 WEST 1234 5698 7654 32', 0)).toEqual([]);
  });

  it('raises confidence when "IBAN" or "bank" is nearby', () => {
    const [plain] = scanText('x GB82 WEST 1234 5698 7654 32', { kinds: ['iban'] });
    const [near] = scanText('IBAN: GB82 WEST 1234 5698 7654 32', { kinds: ['iban'] });
    expect(near!.confidence).toBeGreaterThan(plain!.confidence);
  });
});
