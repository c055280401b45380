import { createHash } from 'node:crypto';
import { MAX_SCAN_LENGTH, scanText } from '../dlp/index.js';
import type { FileKind } from './files.js';
import type { LineIndex } from './lines.js';
import type { ScanFinding, Severity } from './types.js';

/**
 * Embedded secrets: the DLP module's secret detectors (vendor formats, PEM keys, bearer tokens, values
 * assigned to key/secret/token/password names) plus the formats only a bundle holds (CRM session and
 * refresh tokens, HubSpot private app tokens, AWS secret keys, npm tokens, PuTTY keys). The DLP
 * detectors were made for prose; in code, an assignment counts only when the value is a string literal
 * that looks random, so `const token = body.access_token` or a URL is not an alarm.
 */

interface Candidate {
  readonly detector: string;
  readonly start: number;
  readonly end: number;
}

interface Rule {
  readonly severity: Severity;
  readonly what: string;
  /** Guessable values (passwords) get no fingerprint: a hash of one would let anyone test guesses. */
  readonly guessable?: boolean;
}

const rotate = 'remove it and rotate it';

const rules: Readonly<Record<string, Rule>> = {
  'secret.private_key': { severity: 'critical', what: 'a private key' },
  'secret.aws_access_key': { severity: 'critical', what: 'an AWS access key id' },
  'secret.aws_secret_key': { severity: 'critical', what: 'an AWS secret access key' },
  'secret.github_token': { severity: 'critical', what: 'a GitHub token' },
  'secret.github_pat': { severity: 'critical', what: 'a GitHub personal access token' },
  'secret.slack_token': { severity: 'critical', what: 'a Slack token' },
  'secret.slack_webhook': { severity: 'critical', what: 'a Slack webhook URL' },
  'secret.stripe_key': { severity: 'critical', what: 'a Stripe live key' },
  'secret.google_api_key': { severity: 'critical', what: 'a Google API key' },
  'secret.url_credentials': { severity: 'critical', what: 'a URL with a user name and password' },
  'secret.salesforce_session': { severity: 'critical', what: 'a Salesforce session id / access token' },
  'secret.salesforce_refresh': { severity: 'critical', what: 'a Salesforce refresh token' },
  'secret.hubspot_token': { severity: 'critical', what: 'a HubSpot private app token' },
  'secret.hubspot_api_key': { severity: 'critical', what: 'a HubSpot API key' },
  'secret.npm_token': { severity: 'critical', what: 'an npm access token' },
  'secret.jwt': { severity: 'high', what: 'a JSON Web Token' },
  'secret.bearer_token': { severity: 'high', what: 'a bearer token' },
  'secret.generic': {
    severity: 'high',
    what: 'a high-entropy value assigned to a key, secret or token name',
  },
  'secret.password': { severity: 'high', what: 'a password', guessable: true },
  'secret.stripe_test_key': { severity: 'medium', what: 'a Stripe test key' },
};

const TAIL = '(?![A-Za-z0-9_-])';

/** Formats of the CRMs Gatehouse fronts, and of tools bundles carry, that the DLP module does not know. */
const bundlePatterns: readonly { detector: string; pattern: RegExp }[] = [
  // Session id = access token: the 15- or 18-character org id, `!`, then the token proper.
  {
    detector: 'secret.salesforce_session',
    pattern: /(?<![A-Za-z0-9])00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{60,200}(?![A-Za-z0-9._])/g,
  },
  {
    detector: 'secret.salesforce_refresh',
    pattern: /(?<![A-Za-z0-9._])5Aep8[A-Za-z0-9._]{50,200}(?![A-Za-z0-9._])/g,
  },
  {
    detector: 'secret.hubspot_token',
    pattern: new RegExp(
      `(?<![A-Za-z0-9-])pat-(?:na|eu|ap)[0-9]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}${TAIL}`,
      'g',
    ),
  },
  {
    detector: 'secret.hubspot_api_key',
    pattern:
      /(?<=hapikey["']?\s{0,3}[:=]\s{0,3}["']?)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])/gi,
  },
  {
    detector: 'secret.aws_secret_key',
    pattern:
      /(?<=aws_?secret_?(?:access_?)?key["']?\s{0,3}(?:[:=]|=>)\s{0,3}["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/gi,
  },
  { detector: 'secret.npm_token', pattern: new RegExp(`(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}${TAIL}`, 'g') },
  { detector: 'secret.private_key', pattern: /PuTTY-User-Key-File-[23]: [a-z0-9-]{3,32}/g },
  // Also found by the DLP detectors; here too for windows too dense for them (below).
  {
    detector: 'secret.private_key',
    pattern: /-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g,
  },
];

/** Findings of vendor formats win over the generic ones where they overlap. */
const generic: ReadonlySet<string> = new Set(['secret.generic', 'secret.password', 'secret.bearer_token']);

/** A window a little shorter than the DLP bound, and an overlap longer than any token it knows. */
const WINDOW = MAX_SCAN_LENGTH - 4096;
const OVERLAP = 4096;

/**
 * Each key/secret/token word starts a candidate of up to 256 characters in the DLP's assignment
 * detector, so a window packed with them (`key=key=key=...`) costs about a second. Real code stays far
 * below this many per window; a denser window gets only the fixed-format patterns here, and the file is
 * reported as not fully scanned.
 */
const MAX_NAME_WORDS = 1024;
const nameWords = /key|secret|token|passw|pwd|passphrase|credential/gi;

export function findSecrets(text: string, file: string, kind: FileKind, lines: LineIndex): ScanFinding[] {
  const candidates: Candidate[] = [];
  let denseAt: number | undefined;
  for (let from = 0; from < text.length; from += WINDOW) {
    const window = text.slice(from, from + WINDOW + OVERLAP);
    if ((window.match(nameWords)?.length ?? 0) > MAX_NAME_WORDS) {
      denseAt ??= from;
    } else {
      for (const f of scanText(window, { kinds: ['secret'] })) {
        candidates.push({ detector: f.detector, start: from + f.start, end: from + f.end });
      }
    }
    for (const { detector, pattern } of bundlePatterns) {
      pattern.lastIndex = 0;
      for (let m = pattern.exec(window); m !== null; m = pattern.exec(window)) {
        candidates.push({ detector, start: from + m.index, end: from + m.index + m[0].length });
      }
    }
  }

  const ordered = [...candidates].sort(
    (a, b) => Number(generic.has(a.detector)) - Number(generic.has(b.detector)) || a.start - b.start,
  );
  const kept: Candidate[] = [];
  for (const c of ordered) {
    if (c.detector !== 'secret.bearer_token' && generic.has(c.detector) && !assignmentCounts(text, c, kind)) {
      continue;
    }
    insertUnlessOverlapping(kept, c);
  }

  const findings: ScanFinding[] = kept.map((c) => {
    const rule = rules[c.detector] ?? { severity: 'high', what: 'a secret' };
    const value = text.slice(c.start, c.end);
    const line = lines.lineOf(c.start);
    return {
      rule: c.detector,
      severity: rule.severity,
      file,
      line,
      message: `${rule.what} is embedded in the bundle: ${rotate}`,
      ...(rule.guessable || !random(value) ? {} : { fingerprint: fingerprint(value) }),
    };
  });
  if (denseAt !== undefined) {
    findings.push({
      rule: 'bundle.unscanned',
      severity: 'medium',
      file,
      line: lines.lineOf(denseAt),
      message: `from this line on, the file holds more than ${MAX_NAME_WORDS} key, secret or token words per 60 KiB, too many to check each assignment: only fixed-format keys and tokens were looked for`,
    });
  }
  return findings;
}

/** Keeps `kept` sorted by start and free of overlaps; a binary search finds the only neighbours to check. */
function insertUnlessOverlapping(kept: Candidate[], c: Candidate): void {
  let low = 0;
  let high = kept.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (kept[mid]!.start < c.start) low = mid + 1;
    else high = mid;
  }
  const before = kept[low - 1];
  const after = kept[low];
  if ((before && before.end > c.start) || (after && after.start < c.end)) return;
  kept.splice(low, 0, c);
}

/**
 * Whether a value assigned to a secret-like name is worth an alarm. In code it must be a quoted literal
 * that looks random: not a URL, a path, an identifier or member access, words joined by dashes, or a
 * placeholder. In configuration files (.env, .npmrc, YAML) quotes are optional, the rest holds.
 */
function assignmentCounts(text: string, c: Candidate, kind: FileKind): boolean {
  const value = text.slice(c.start, c.end);
  if (placeholder(value)) return false;
  if (c.detector === 'secret.password') {
    return kind !== 'code' || quoted(text, c.start);
  }
  if (kind === 'code' && !quoted(text, c.start)) return false;
  if (/^[a-z][a-z0-9+.-]{0,15}:\/\//i.test(value)) return false; // a URL (credentials in one are their own rule)
  if (/^[./~]|\/./.test(value) && !/[+=]/.test(value)) return false; // a path
  if (/^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/.test(value)) return false; // member access
  if (!/[0-9]/.test(value) || !/[A-Za-z]/.test(value)) return false;
  if (
    /^[a-z]+(?:[-_][a-z0-9]+)*$/i.test(value) &&
    value
      .split(/[-_]/)
      .every((w) => w.length < 12 && (/^[a-z]+$/i.test(w) || /^\d+$/.test(w) || w.length <= 3))
  ) {
    return false; // words joined by dashes or underscores: a name, not a key
  }
  return random(value);
}

function quoted(text: string, start: number): boolean {
  const before = text[start - 1];
  return before === '"' || before === "'" || before === '`';
}

function placeholder(value: string): boolean {
  return (
    /^<.*>$/.test(value) ||
    /^\{\{.*\}\}$/.test(value) ||
    /(?:your|my)[-_ ]?(?:api[-_ ]?)?(?:key|secret|token|password)|change[-_ ]?me|example|placeholder|dummy|redacted|x{6,}|\*{3,}|\.{3,}/i.test(
      value,
    ) ||
    /^(?:process\.env|import\.meta\.env|os\.environ|env)\b/.test(value)
  );
}

/** Long and varied enough that a hash of it cannot be reversed by guessing. */
function random(value: string): boolean {
  if (value.length < 16) return false;
  const counts = new Map<string, number>();
  for (const c of value) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / value.length) * Math.log2(n / value.length);
  return bits >= 3;
}

export function fingerprint(value: string): string {
  return `sha256:${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12)}`;
}
