import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DETECTOR_KINDS, scoreDetectors, type LabelledSample } from './index.js';

/**
 * The labelled corpus (test/fixtures/dlp-corpus.jsonl, written by scripts/dlp-corpus.js): for every
 * detector several hundred texts that hold a value, in every formatting that evaded detection before
 * normalisation, and as many look-alikes that must not match (timestamps, order and invoice numbers,
 * dates, amounts, versions). `npm run bench` prints the same table.
 */
const corpus = readFileSync(new URL('../../test/fixtures/dlp-corpus.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as LabelledSample);

/** The floor each detector must keep; measured figures are in the README (bench). */
const floors = { precision: 0.95, recall: 0.97 };

describe('DLP detectors on the labelled corpus', () => {
  it('holds at least 300 positive and 300 negative samples per detector', () => {
    for (const kind of DETECTOR_KINDS) {
      const mine = corpus.filter((sample) => sample.kind === kind);
      expect(mine.filter((s) => s.label).length, kind).toBeGreaterThanOrEqual(300);
      expect(mine.filter((s) => !s.label).length, kind).toBeGreaterThanOrEqual(300);
    }
  });

  const scores = scoreDetectors(corpus);
  it.each(scores.map((score) => [score.kind, score] as const))(
    '%s keeps precision and recall above the floor',
    (_kind, score) => {
      expect(score.precision, JSON.stringify(score.misses)).toBeGreaterThanOrEqual(floors.precision);
      expect(score.recall, JSON.stringify(score.misses)).toBeGreaterThanOrEqual(floors.recall);
    },
  );

  it('misses no payment card or SSN in any of the formats that evaded it before', () => {
    for (const score of scores.filter((s) => s.kind === 'payment_card' || s.kind === 'us_ssn')) {
      expect(score.falseNegatives, JSON.stringify(score.misses)).toBe(0);
    }
  });
});
