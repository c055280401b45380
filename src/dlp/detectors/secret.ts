import { characterClasses, confidence, contextWords, shannonEntropy } from '../context.js';
import type { Finding } from '../types.js';

interface SecretPattern {
  detector: string;
  /** Global; bounded or single-class quantifiers only, so no catastrophic backtracking. */
  pattern: RegExp;
  score: number;
  /** Optional check of the match beyond its shape; false drops it. */
  validate?: (match: string) => boolean;
}

const TAIL = '(?![A-Za-z0-9_-])';

const PATTERNS: readonly SecretPattern[] = [
  // AWS access key ids: AKIA long-term, ASIA temporary (STS), plus the rarer ABIA/ACCA.
  {
    detector: 'secret.aws_access_key',
    pattern: new RegExp(`(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}${TAIL}`, 'g'),
    score: 0.9,
  },
  {
    detector: 'secret.github_token',
    pattern: new RegExp(`(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}${TAIL}`, 'g'),
    score: 0.95,
  },
  {
    detector: 'secret.github_pat',
    pattern: new RegExp(`(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}${TAIL}`, 'g'),
    score: 0.95,
  },
  {
    detector: 'secret.slack_token',
    pattern: new RegExp(`(?<![A-Za-z0-9_])xox[abposr]-[0-9]{6,16}(?:-[0-9A-Za-z]{6,64}){1,4}${TAIL}`, 'g'),
    score: 0.9,
  },
  {
    detector: 'secret.slack_token',
    pattern: new RegExp(`(?<![A-Za-z0-9_])xapp-\\d-[A-Z0-9]{6,16}-\\d{6,16}-[a-f0-9]{32,80}${TAIL}`, 'g'),
    score: 0.9,
  },
  {
    detector: 'secret.slack_webhook',
    pattern: /https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]{6,16}\/B[A-Z0-9]{6,16}\/[A-Za-z0-9]{16,40}/g,
    score: 0.95,
  },
  {
    detector: 'secret.stripe_key',
    pattern: new RegExp(`(?<![A-Za-z0-9_])(?:sk|rk)_live_[0-9A-Za-z]{16,247}${TAIL}`, 'g'),
    score: 0.95,
  },
  {
    detector: 'secret.stripe_test_key',
    pattern: new RegExp(`(?<![A-Za-z0-9_])(?:sk|rk)_test_[0-9A-Za-z]{16,247}${TAIL}`, 'g'),
    score: 0.7,
  },
  {
    detector: 'secret.google_api_key',
    pattern: new RegExp(`(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}${TAIL}`, 'g'),
    score: 0.9,
  },
  // Header and payload are base64url JSON objects ("eyJ" is `{"`); the header must name an alg.
  {
    detector: 'secret.jwt',
    pattern: new RegExp(
      `(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\\.eyJ[A-Za-z0-9_-]{5,16384}\\.[A-Za-z0-9_-]{0,4096}${TAIL}`,
      'g',
    ),
    score: 0.9,
    validate: jwtHeaderValid,
  },
  {
    detector: 'secret.url_credentials',
    pattern: /\b[a-z][a-z0-9+.-]{1,15}:\/\/[^\s:/?#@]{1,128}:[^\s/?#@]{1,128}@[A-Za-z0-9.-]{1,253}/g,
    score: 0.9,
  },
];

function jwtHeaderValid(token: string): boolean {
  try {
    const header: unknown = JSON.parse(
      Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'),
    );
    return (
      typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string'
    );
  } catch {
    return false;
  }
}

const nearSecretWords = contextWords([
  'key',
  'secret',
  'token',
  'password',
  'credential',
  'credentials',
  'api',
  'auth',
  'aws',
  'github',
  'slack',
  'stripe',
  'google',
]);

/**
 * PEM private keys. The finding covers the whole block up to its END line, so that redaction removes the
 * key material and not just its header; a block without an END line runs to the end of its base64 lines.
 */
function detectPrivateKeys(text: string): Finding[] {
  const findings: Finding[] = [];
  const missingFooters = new Set<string>();
  const header = /-----BEGIN ((?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?)-----/g;
  for (let m = header.exec(text); m !== null; m = header.exec(text)) {
    const start = m.index;
    const footer = `-----END ${m[1]}-----`;
    // Remembering a missing footer keeps many headers without one from rescanning the text each time.
    const footerAt = missingFooters.has(footer) ? -1 : text.indexOf(footer, start + m[0].length);
    if (footerAt < 0) missingFooters.add(footer);
    let end: number;
    if (footerAt >= 0) {
      end = footerAt + footer.length;
    } else {
      end = start + m[0].length;
      // Base64 lines and RFC 1421 headers ("Proc-Type: 4,ENCRYPTED").
      while (end < text.length && /[A-Za-z0-9+/=\s:,-]/.test(text[end]!)) end++;
      while (end > start + m[0].length && /\s/.test(text[end - 1]!)) end--;
    }
    findings.push({ kind: 'secret', start, end, confidence: 0.99, detector: 'secret.private_key' });
    header.lastIndex = end;
  }
  return findings;
}

/**
 * A value assigned to a key/secret/token/password-like name (`api_key = ...`, `"token": "..."`,
 * `password is ...`). Passwords are people-chosen and low in entropy, so they need only two character
 * classes; for keys and tokens the value must look random (length 16+, entropy 3+ bits per character).
 * The finding covers the value alone, so the name stays readable after redaction.
 */
function detectAssignedSecrets(text: string): Finding[] {
  const findings: Finding[] = [];
  const assignment =
    /(key|secret|token|passw(?:or)?d|pwd|passphrase|credentials?)[A-Za-z0-9_-]{0,24}["']?(?:\s{0,3}(?:[:=]|=>|:=)\s{0,3}|\s{1,3}is\s{1,3}|\s{1,3})["']?([^\s"'`,;<>()[\]{}]{4,256})/gi;
  for (let m = assignment.exec(text); m !== null; m = assignment.exec(text)) {
    const name = m[1]!.toLowerCase();
    const value = m[2]!;
    const end = m.index + m[0].length;
    const start = end - value.length;
    // Resume right after the name, so a keyword inside this value is still seen on its own.
    assignment.lastIndex = m.index + m[1]!.length;
    if (/^(?:null|none|undefined|true|false|required|redacted|\*+|x+|\.+)$/i.test(value)) continue;
    if (/^[$%]/.test(value)) continue; // ${VAR}, %VAR%: a reference, not the secret
    const explicit = /[:=]/.test(m[0].slice(m[1]!.length, m[0].length - value.length));
    const entropy = shannonEntropy(value);
    const classes = characterClasses(value);
    let score: number;
    let detector: string;
    if (/^pass|^pwd/.test(name)) {
      if (classes < 2 && value.length < 12) continue;
      if (value.length < 6) continue;
      detector = 'secret.password';
      score = explicit ? 0.7 : 0.55;
    } else {
      if (value.length < 16 || entropy < 3 || classes < 2) continue;
      detector = 'secret.generic';
      score = 0.5 + Math.min(0.3, (entropy - 3) * 0.15) + (explicit ? 0.1 : 0);
    }
    findings.push({ kind: 'secret', start, end, confidence: confidence(score), detector });
  }
  return findings;
}

/** "Authorization: Bearer <token>" and the like. */
function detectBearerTokens(text: string): Finding[] {
  const findings: Finding[] = [];
  const bearer = /\bBearer\s{1,3}([A-Za-z0-9._~+/-]{20,4096}=*)/g;
  for (let m = bearer.exec(text); m !== null; m = bearer.exec(text)) {
    const value = m[1]!;
    if (shannonEntropy(value) < 3) continue;
    const end = m.index + m[0].length;
    findings.push({
      kind: 'secret',
      start: end - value.length,
      end,
      confidence: 0.85,
      detector: 'secret.bearer_token',
    });
  }
  return findings;
}

/** Secrets and API keys: vendor formats first, then PEM keys, bearer tokens and assigned values. */
export function detectSecrets(text: string): Finding[] {
  const findings: Finding[] = [];
  for (const { detector, pattern, score, validate } of PATTERNS) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      if (validate && !validate(m[0])) continue;
      const start = m.index;
      const end = start + m[0].length;
      const boost = nearSecretWords(text, start, end) ? 0.05 : 0;
      findings.push({ kind: 'secret', start, end, confidence: confidence(score + boost), detector });
    }
  }
  return [
    ...findings,
    ...detectPrivateKeys(text),
    ...detectBearerTokens(text),
    ...detectAssignedSecrets(text),
  ];
}
