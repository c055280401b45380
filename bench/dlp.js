// The DLP detectors' precision and recall on the labelled corpus (test/fixtures/dlp-corpus.jsonl,
// written by scripts/dlp-corpus.js), as the gateway runs them: normalised text, default threshold.
import { readFileSync } from 'node:fs';
import { scoreDetectors } from '../dist/dlp/index.js';

export function dlpBench() {
  const corpus = readFileSync(new URL('../test/fixtures/dlp-corpus.jsonl', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const started = process.hrtime.bigint();
  const scores = scoreDetectors(corpus);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    samples: corpus.length,
    samples_per_second: Math.round(corpus.length / seconds),
    detectors: scores.map((s) => ({
      detector: s.kind,
      positives: s.truePositives + s.falseNegatives,
      negatives: s.falsePositives + s.trueNegatives,
      true_positives: s.truePositives,
      false_positives: s.falsePositives,
      false_negatives: s.falseNegatives,
      precision: Math.round(s.precision * 1000) / 1000,
      recall: Math.round(s.recall * 1000) / 1000,
      misses: s.misses,
    })),
  };
}

export function printDlpTable(dlp) {
  console.log(
    `| DLP detector (${dlp.samples} labelled samples) | positives | negatives | TP | FP | FN | precision | recall | wrong on |\n|---|---|---|---|---|---|---|---|---|`,
  );
  for (const d of dlp.detectors) {
    const wrong = Object.entries(d.misses)
      .map(([shape, n]) => `${shape} ${n}`)
      .join(', ');
    console.log(
      `| ${d.detector} | ${d.positives} | ${d.negatives} | ${d.true_positives} | ${d.false_positives} | ${d.false_negatives} | ${d.precision.toFixed(3)} | ${d.recall.toFixed(3)} | ${wrong || '—'} |`,
    );
  }
}
