import { describe, expect, it } from 'vitest';
import { scanText } from '../index.js';

const found = (kind: 'us_ssn' | 'uk_nino', text: string, minConfidence = 0.5): string[] =>
  scanText(text, { kinds: [kind], minConfidence }).map((f) => text.slice(f.start, f.end));

describe('US SSN detector', () => {
  it('catches a dashed SSN', () => {
    expect(found('us_ssn', 'on file: 078-05-1120.')).toEqual(['078-05-1120']);
  });

  it('does not catch area 000, area 666 or areas 900-999', () => {
    expect(found('us_ssn', 'ssn 000-12-3456, ssn 666-12-3456, ssn 900-12-3456, ssn 999-12-3456', 0)).toEqual(
      [],
    );
  });

  it('does not catch group 00 or serial 0000', () => {
    expect(found('us_ssn', 'ssn 078-00-1120 and ssn 078-05-0000', 0)).toEqual([]);
  });

  it('catches mixed separators (issue 15: they evaded it), but not one separator alone or a longer number', () => {
    expect(found('us_ssn', '078-05 1120')).toEqual(['078-05 1120']);
    expect(found('us_ssn', '078-051120 and 1-078-05-1120 and 078-05-1120-9', 0)).toEqual([]);
  });

  it('reports nine bare digits only next to a word like "SSN"', () => {
    expect(found('us_ssn', 'invoice 078051120')).toEqual([]);
    expect(found('us_ssn', 'SSN 078051120')).toEqual(['078051120']);
  });

  it('raises confidence when "social security" is nearby', () => {
    const [plain] = scanText('id 078-05-1120', { kinds: ['us_ssn'] });
    const [near] = scanText('social security number 078-05-1120', { kinds: ['us_ssn'] });
    expect(near!.confidence).toBeGreaterThan(plain!.confidence);
  });
});

describe('UK National Insurance number detector', () => {
  it('catches a NINO with a valid prefix, spaced or compact', () => {
    expect(found('uk_nino', 'NI: AB 12 34 56 C, also JG103759A')).toEqual(['AB 12 34 56 C', 'JG103759A']);
  });

  it('does not catch prefixes with D, F, I, Q, U or V, or O second (QQ is the HMRC specimen)', () => {
    expect(found('uk_nino', 'QQ 12 34 56 C, DA123456A, AF123456B, AO123456C, VA123456D', 0)).toEqual([]);
  });

  it('does not catch the unallocated prefixes BG, GB, KN, NK, NT, TN and ZZ', () => {
    expect(
      found('uk_nino', 'BG123456A GB123456A KN123456A NK123456A NT123456A TN123456A ZZ123456A', 0),
    ).toEqual([]);
  });

  it('does not catch a suffix outside A-D', () => {
    expect(found('uk_nino', 'AB123456E', 0)).toEqual([]);
  });

  it('reports a NINO without its suffix only next to a word like "national insurance"', () => {
    expect(found('uk_nino', 'code AB 12 34 56')).toEqual([]);
    expect(found('uk_nino', 'national insurance AB 12 34 56')).toEqual(['AB 12 34 56']);
  });
});
