/**
 * Entry names from archives are attacker-controlled. The scanner never extracts anything, so a name
 * cannot write outside a directory here; but a name that would on extraction (zip slip: `../`, an
 * absolute path, a drive letter) marks a hostile or broken bundle and is reported. Names are also
 * printed, so control characters are escaped before they reach a terminal or a CI log.
 */

export interface EntryName {
  /** `/`-separated, without `.` segments, printable. */
  readonly path: string;
  /** The name would land outside the extraction directory. */
  readonly escapes: boolean;
}

const maxShown = 512;

export function entryName(raw: string): EntryName {
  const segments = raw.split(/[\\/]/);
  const escapes =
    /^[\\/]/.test(raw) ||
    /^[A-Za-z]:/.test(raw) ||
    raw.includes('\0') ||
    segments.some((segment) => segment === '..');
  const kept = segments.filter((segment) => segment !== '' && segment !== '.');
  return { path: printable(kept.join('/') || '.'), escapes };
}

/** Control characters, DEL and C1 controls as `\xNN` / `\uNNNN`; long names cut with an ellipsis. */
export function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = name.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return escaped.length > maxShown ? `${escaped.slice(0, maxShown)}…` : escaped;
}
