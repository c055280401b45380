/** Characters looked at before a match for context words, and after it. */
const BEFORE = 48;
const AFTER = 24;

/**
 * Builds a test for context words ("card", "iban", "ssn") near a match. Words match whole, case-insensitively;
 * the window is small and fixed, so the cost per match does not grow with the text.
 */
export function contextWords(
  words: readonly string[],
): (text: string, start: number, end: number) => boolean {
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '[\\s_-]?'));
  const pattern = new RegExp(`(?:^|[^a-z0-9])(?:${escaped.join('|')})(?![a-z0-9])`, 'i');
  return (text, start, end) =>
    pattern.test(text.slice(Math.max(0, start - BEFORE), start)) ||
    pattern.test(text.slice(end, Math.min(text.length, end + AFTER)));
}

/** Rounds to two decimals and keeps a confidence inside (0, 0.99]: no detector is ever certain. */
export function confidence(value: number): number {
  return Math.round(Math.min(0.99, Math.max(0.01, value)) * 100) / 100;
}

/** True when the character at `index` is a letter, digit or underscore (so a match there is not standalone). */
export function isWordChar(text: string, index: number): boolean {
  if (index < 0 || index >= text.length) return false;
  const c = text.charCodeAt(index);
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(value: string): number {
  if (value.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const c of value) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** How many of lower case, upper case, digits and other characters a value uses. */
export function characterClasses(value: string): number {
  return (
    Number(/[a-z]/.test(value)) +
    Number(/[A-Z]/.test(value)) +
    Number(/[0-9]/.test(value)) +
    Number(/[^A-Za-z0-9]/.test(value))
  );
}
