import { scanText } from './scan.js';
import { DETECTOR_KINDS, type DetectorKind } from './types.js';

/** One labelled sample of the corpus (test/fixtures/dlp-corpus.jsonl, made by scripts/dlp-corpus.js). */
export interface LabelledSample {
  readonly kind: DetectorKind;
  /** Whether `text` holds a value of `kind`. */
  readonly label: boolean;
  readonly text: string;
  /** How the value (or the look-alike) was written. */
  readonly shape: string;
}

export interface DetectorScore {
  readonly kind: DetectorKind;
  readonly truePositives: number;
  readonly falsePositives: number;
  readonly falseNegatives: number;
  readonly trueNegatives: number;
  readonly precision: number;
  readonly recall: number;
  /** The shapes of the samples it got wrong, with how many of each: where to look first. */
  readonly misses: Readonly<Record<string, number>>;
}

/**
 * Precision and recall of each detector over a labelled corpus, as `scanText` runs it (normalisation,
 * default threshold, overlaps resolved): a sample counts as detected when a finding of its kind is
 * reported.
 */
export function scoreDetectors(samples: readonly LabelledSample[]): DetectorScore[] {
  return DETECTOR_KINDS.flatMap((kind) => {
    const mine = samples.filter((sample) => sample.kind === kind);
    if (mine.length === 0) return [];
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let tn = 0;
    const misses: Record<string, number> = {};
    for (const sample of mine) {
      const found = scanText(sample.text, { kinds: [kind] }).length > 0;
      if (found && sample.label) tp++;
      else if (found) fp++;
      else if (sample.label) fn++;
      else tn++;
      if (found !== sample.label) misses[sample.shape] = (misses[sample.shape] ?? 0) + 1;
    }
    return [
      {
        kind,
        truePositives: tp,
        falsePositives: fp,
        falseNegatives: fn,
        trueNegatives: tn,
        precision: tp + fp === 0 ? 1 : tp / (tp + fp),
        recall: tp + fn === 0 ? 1 : tp / (tp + fn),
        misses,
      },
    ];
  });
}
