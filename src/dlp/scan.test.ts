import { describe, expect, it } from 'vitest';
import { MAX_SCAN_LENGTH, scanText, type DetectorKind, type Finding } from './index.js';
import { resolveOverlaps } from './scan.js';

const finding = (start: number, end: number, confidence: number, detector = 'test'): Finding => ({
  kind: 'secret',
  start,
  end,
  confidence,
  detector,
});

describe('scanText', () => {
  const note =
    'Jane (jane@acme.example, +44 20 7946 0958) paid with 4111 1111 1111 1111 from GB82 WEST 1234 5698 7654 32; ' +
    'SSN 078-05-1120, NI AB 12 34 56 C. Key: AKIAIOSFODNN7EXAMPLE';

  it('finds every kind in one note, in text order', () => {
    expect(scanText(note).map((f) => f.kind)).toEqual([
      'email',
      'phone',
      'payment_card',
      'iban',
      'us_ssn',
      'uk_nino',
      'secret',
    ]);
  });

  it('returns positions, kind, confidence and detector, never the matched text', () => {
    for (const f of scanText(note)) {
      expect(Object.keys(f).sort()).toEqual(['confidence', 'detector', 'end', 'kind', 'start']);
      expect(f.confidence).toBeGreaterThanOrEqual(0.5);
      expect(f.confidence).toBeLessThanOrEqual(1);
    }
  });

  it('runs only the kinds asked for', () => {
    expect(scanText(note, { kinds: ['iban', 'us_ssn'] }).map((f) => f.kind)).toEqual(['iban', 'us_ssn']);
    expect(scanText(note, { kinds: [] })).toEqual([]);
  });

  it('drops findings under minConfidence (0.5 by default)', () => {
    const text = 'ref 078051120';
    expect(scanText(text, { kinds: ['us_ssn'] })).toEqual([]);
    expect(scanText(text, { kinds: ['us_ssn'], minConfidence: 0.2 })).toHaveLength(1);
    expect(scanText(note, { minConfidence: 1 })).toEqual([]);
  });

  it('keeps the specific detector when a generic one covers the same value', () => {
    const text = 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE';
    expect(scanText(text).map((f) => f.detector)).toEqual(['secret.aws_access_key']);
  });

  it('keeps URL credentials over the email-shaped part inside them', () => {
    const text = 'https://admin:hunter2@crm.acme.example/x';
    expect(scanText(text).map((f) => f.detector)).toEqual(['secret.url_credentials']);
  });

  it('throws a TypeError for an unknown kind, a bad threshold or a non-string', () => {
    expect(() => scanText('x', { kinds: ['passport' as DetectorKind] })).toThrow(TypeError);
    expect(() => scanText('x', { minConfidence: 1.5 })).toThrow(TypeError);
    expect(() => scanText('x', { minConfidence: Number.NaN })).toThrow(TypeError);
    expect(() => scanText(undefined as unknown as string)).toThrow(TypeError);
  });
});

describe('scanText on hostile input', () => {
  const MB = 1024 * 1024;
  const hostile: [string, string][] = [
    ['digits and spaces', '1 2 3 4 5 6 7 8 9 0 '.repeat(MB / 20)],
    ['one digit repeated with spaces', '4 '.repeat(MB / 2)],
    ['digits and dashes', '1234-'.repeat(MB / 5)],
    ['short numbers separated by commas', '1234567,'.repeat(MB / 8)],
    ['at signs and dots', 'a@b.'.repeat(MB / 4)],
    ['a run of dots before an at sign', `${'.'.repeat(MB)}@x.com`],
    ['repeated JWT openers', 'eyJ'.repeat(MB / 3)],
    ['repeated key assignments', 'key= '.repeat(MB / 5)],
    ['PEM headers without footers', '-----BEGIN PRIVATE KEY-----\n'.repeat(MB / 28)],
    ['IBAN-like prefixes', 'GB82 '.repeat(MB / 5)],
    ['NINO-like prefixes', 'AB 12 '.repeat(MB / 6)],
  ];

  it.each(hostile)('returns on 1 MB of %s', (_name, text) => {
    const found = scanText(text);
    expect(Array.isArray(found)).toBe(true);
    for (const f of found) expect(f.end).toBeLessThanOrEqual(MAX_SCAN_LENGTH);
  });

  it('scans only the first MAX_SCAN_LENGTH characters', () => {
    const text = `${' '.repeat(MAX_SCAN_LENGTH)}4111 1111 1111 1111`;
    expect(scanText(text)).toEqual([]);
  });
});

describe('resolveOverlaps', () => {
  it('keeps the more confident of two overlapping findings', () => {
    expect(resolveOverlaps([finding(0, 10, 0.6, 'a'), finding(5, 12, 0.9, 'b')])).toEqual([
      finding(5, 12, 0.9, 'b'),
    ]);
  });

  it('keeps the longer of two equally confident overlapping findings', () => {
    expect(resolveOverlaps([finding(2, 6, 0.8, 'short'), finding(0, 10, 0.8, 'long')])).toEqual([
      finding(0, 10, 0.8, 'long'),
    ]);
  });

  it('keeps adjacent and separate findings, sorted by start', () => {
    const kept = resolveOverlaps([finding(10, 20, 0.7), finding(0, 10, 0.6), finding(30, 31, 0.9)]);
    expect(kept.map((f) => [f.start, f.end])).toEqual([
      [0, 10],
      [10, 20],
      [30, 31],
    ]);
  });

  it('drops a finding that overlaps either neighbour of the gap it would fill', () => {
    const kept = resolveOverlaps([finding(0, 5, 0.9), finding(8, 12, 0.9), finding(4, 9, 0.5)]);
    expect(kept.map((f) => [f.start, f.end])).toEqual([
      [0, 5],
      [8, 12],
    ]);
  });
});
