import { MAX_SCAN_LENGTH, checkKinds, scanText, type ScanOptions } from './scan.js';
import type { DetectorKind, Finding } from './types.js';

export type DlpAction = 'allow' | 'redact' | 'refuse';

export interface DlpRule {
  kinds: readonly DetectorKind[];
  action: DlpAction;
}

export interface DlpResult {
  /** The strongest action any finding called for: refuse > redact > allow. */
  action: DlpAction;
  /**
   * The text with every redacted or refused finding replaced. On `refuse` it is still redacted, so a
   * caller that logs or echoes it leaks nothing; it must not be stored or sent on.
   */
  text: string;
  /** The findings that were acted on (redact or refuse), in text order. */
  findings: Finding[];
}

/** Stands in for text past MAX_SCAN_LENGTH, which was never scanned. */
export const UNSCANNED_MARKER = '[redacted:unscanned]';

const STRENGTH: Readonly<Record<DlpAction, number>> = { allow: 0, redact: 1, refuse: 2 };

function stronger(a: DlpAction, b: DlpAction): DlpAction {
  return STRENGTH[b] > STRENGTH[a] ? b : a;
}

const defaultReplacement = (f: Finding): string => `[redacted:${f.kind}]`;

/**
 * Replaces each finding's span with a placeholder. Findings may come in any order; overlapping ones are
 * merged and replaced once, with the placeholder of the most confident.
 */
export function redactText(
  text: string,
  findings: readonly Finding[],
  replacement: (f: Finding) => string = defaultReplacement,
): string {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  if (!Array.isArray(findings)) throw new TypeError('findings must be an array');
  if (typeof replacement !== 'function') throw new TypeError('replacement must be a function');
  for (const f of findings) {
    if (
      !Number.isInteger(f.start) ||
      !Number.isInteger(f.end) ||
      f.start < 0 ||
      f.end < f.start ||
      f.end > text.length
    ) {
      throw new TypeError('a finding lies outside the text');
    }
  }
  const spans = findings.filter((f) => f.end > f.start).sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let cursor = 0;
  for (let i = 0; i < spans.length;) {
    let best = spans[i]!;
    let end = best.end;
    let j = i + 1;
    for (; j < spans.length && spans[j]!.start < end; j++) {
      end = Math.max(end, spans[j]!.end);
      if (spans[j]!.confidence > best.confidence) best = spans[j]!;
    }
    out += text.slice(cursor, spans[i]!.start) + replacement(best);
    cursor = end;
    i = j;
  }
  return out + text.slice(cursor);
}

/**
 * Applies DLP rules to one text: incoming note bodies (refuse a card number or national id, say) and
 * outgoing free-text fields (redact what they should not carry). Each kind takes the strongest action of
 * the rules naming it; only kinds that are redacted or refused are scanned. Text past MAX_SCAN_LENGTH
 * cannot be vouched for, so when any rule would act it gets that rule's action: refused, or cut and
 * replaced by UNSCANNED_MARKER.
 */
export function applyDlp(
  text: string,
  rules: readonly DlpRule[],
  options: Omit<ScanOptions, 'kinds'> = {},
): DlpResult {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  if (!Array.isArray(rules)) throw new TypeError('rules must be an array');
  const actions = new Map<DetectorKind, DlpAction>();
  let strongestRule: DlpAction = 'allow';
  for (const rule of rules) {
    if (rule === null || typeof rule !== 'object' || !(rule.action in STRENGTH)) {
      throw new TypeError('each rule needs kinds and an action of allow, redact or refuse');
    }
    for (const kind of checkKinds(rule.kinds))
      actions.set(kind, stronger(actions.get(kind) ?? 'allow', rule.action));
    if (rule.kinds.length > 0) strongestRule = stronger(strongestRule, rule.action);
  }
  const kinds = [...actions].filter(([, a]) => a !== 'allow').map(([k]) => k);
  if (kinds.length === 0) return { action: 'allow', text, findings: [] };

  const findings = scanText(text, { ...options, kinds });
  let action: DlpAction = 'allow';
  for (const f of findings) action = stronger(action, actions.get(f.kind) ?? 'allow');
  if (text.length <= MAX_SCAN_LENGTH) return { action, text: redactText(text, findings), findings };

  const scanned = text.slice(0, MAX_SCAN_LENGTH);
  return {
    action: stronger(action, strongestRule),
    text: redactText(scanned, findings) + UNSCANNED_MARKER,
    findings,
  };
}
