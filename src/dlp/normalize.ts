/**
 * Text as the detectors read it. Formatting must not hide a value: a card number with dots or slashes,
 * non-breaking or doubled spaces, zero-width characters, Unicode dashes, fullwidth or Arabic-Indic
 * digits is the same card number. Detection runs on the normalised text, and every finding is mapped
 * back to the original's offsets, so redaction replaces exactly the characters that were written.
 *
 * Per code point: invisible format characters (Unicode Cf: zero-width space and joiners, word joiner,
 * BOM, soft hyphen, bidi marks) are dropped; NFKC folds compatibility forms (fullwidth, circled,
 * mathematical digits and letters); a decimal digit of any script becomes its ASCII digit; every dash
 * and minus becomes `-`; every space or tab becomes ` `, and a run of them one. Between two digits,
 * `.`, `/`, `\` and `_` become `-`: a separator inside a number is a separator, whichever one it is.
 */

export interface NormalizedText {
  readonly text: string;
  /** `origin[i]` is the original offset of normalised character i; `origin[text.length]` the original's length. */
  readonly origin: Int32Array;
}

const invisible = /^\p{Cf}$/u;
const dash = /^[\p{Pd}\u2212\uFE63\uFF0D]$/u;
const space = /^[\p{Zs}\t]$/u;
const decimalDigit = /^\p{Nd}$/u;
const digitSeparators = new Set(['.', '/', '\\', '_']);

/**
 * Every decimal digit of every script sits in a block of ten that starts at its zero (Unicode keeps
 * them contiguous and in order): its value is its distance from the block's start. The zeros of the
 * blocks are found once, from the Unicode tables the regular-expression engine carries.
 */
let zeros: readonly number[] | undefined;
function digitZeros(): readonly number[] {
  if (zeros) return zeros;
  const found: number[] = [];
  let run = -1;
  for (let cp = 0; cp <= 0x1ffff; cp++) {
    if (decimalDigit.test(String.fromCodePoint(cp))) {
      if (run < 0) run = cp;
      if ((cp - run) % 10 === 0) found.push(cp);
    } else {
      run = -1;
    }
  }
  zeros = found;
  return zeros;
}

function digitValue(cp: number): number {
  const starts = digitZeros();
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >>> 1;
    if (starts[mid]! <= cp) low = mid;
    else high = mid - 1;
  }
  return cp - starts[low]!;
}

/** The ASCII-only text that needs none of this comes back as is, with an identity map. */
export function normalizeForScan(original: string): NormalizedText {
  if (/^[\x20-\x7e\n\r]*$/.test(original) && !/ {2}|\d[./\\_]\d/.test(original)) {
    const origin = new Int32Array(original.length + 1);
    for (let i = 0; i <= original.length; i++) origin[i] = i;
    return { text: original, origin };
  }
  const out: string[] = [];
  const from: number[] = [];
  const push = (ch: string, at: number) => {
    out.push(ch);
    from.push(at);
  };
  let offset = 0;
  for (const ch of original) {
    const at = offset;
    offset += ch.length;
    if (invisible.test(ch)) continue;
    for (const folded of ch.normalize('NFKC')) {
      const cp = folded.codePointAt(0)!;
      if (decimalDigit.test(folded)) push(cp <= 0x39 ? folded : String(digitValue(cp)), at);
      else if (dash.test(folded)) push('-', at);
      else if (space.test(folded)) {
        if (out[out.length - 1] !== ' ') push(' ', at);
      } else {
        for (const unit of folded) push(unit, at);
      }
    }
  }
  // A separator between two numbers, once invisibles are gone and digits are ASCII. Numbers glued to
  // letters are part of a token (a JWT's `…x9.4y…`, a version `v1.2`), whose characters stay as written.
  for (let i = 1; i < out.length - 1; i++) {
    if (!digitSeparators.has(out[i]!) || !isAsciiDigit(out[i - 1]!) || !isAsciiDigit(out[i + 1]!)) continue;
    let left = i - 1;
    while (left > 0 && isAsciiDigit(out[left - 1]!)) left--;
    let right = i + 1;
    while (right < out.length - 1 && isAsciiDigit(out[right + 1]!)) right++;
    if (!isAsciiLetter(out[left - 1]) && !isAsciiLetter(out[right + 1])) out[i] = '-';
  }
  const text = out.join('');
  const origin = new Int32Array(text.length + 1);
  // Each pushed piece is one UTF-16 unit except astral characters kept as they are (two units).
  let unit = 0;
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < out[i]!.length; k++) origin[unit++] = from[i]!;
  }
  origin[text.length] = original.length;
  return { text, origin };
}

function isAsciiLetter(ch: string | undefined): boolean {
  return ch !== undefined && /^[A-Za-z]$/.test(ch);
}

function isAsciiDigit(ch: string): boolean {
  return ch.length === 1 && ch >= '0' && ch <= '9';
}

/** A span of the normalised text as the span of the original it came from (`end` exclusive). */
export function originalSpan(normalized: NormalizedText, start: number, end: number): [number, number] {
  const { origin, text } = normalized;
  const from = origin[start]!;
  // The end is where the character after the span began, or the original's end.
  const to = end >= text.length ? origin[text.length]! : origin[end]!;
  return [from, Math.max(from, to)];
}
