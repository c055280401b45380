import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fileKind } from './files.js';
import { lineIndex } from './lines.js';
import { findSecrets } from './secrets.js';

// Planted values are made at run time, so this source holds nothing a secret scanner would flag.
const join = (...parts: string[]): string => parts.join('');
const alnum = (n: number): string => {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(n)].map((b) => chars[b % chars.length]).join('');
};
const hex = (n: number): string =>
  randomBytes(Math.ceil(n / 2))
    .toString('hex')
    .slice(0, n);
const uuid = (): string => `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;

const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
  type: 'pkcs1',
  format: 'pem',
}) as string;
const ecPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  type: 'pkcs8',
  format: 'pem',
}) as string;
const openssh = join(
  '-----BEGIN OPENSSH ',
  'PRIVATE KEY-----\n',
  randomBytes(300).toString('base64'),
  '\n-----END OPENSSH PRIVATE KEY-----',
);

const planted: [string, string][] = [
  ['secret.salesforce_session', join('00D', alnum(12), '!', 'AQ', alnum(94))],
  ['secret.salesforce_refresh', join('5Aep8', '61', alnum(80))],
  ['secret.hubspot_token', join('pat-', 'na1-', uuid())],
  ['secret.aws_access_key', join('AKIA', alnum(16).toUpperCase())],
  ['secret.github_token', join('gh', 'p_', alnum(36))],
  ['secret.slack_token', join('xo', 'xb-', '123456789012-1234567890123-', alnum(24))],
  ['secret.stripe_key', join('sk', '_live_', alnum(24))],
  ['secret.npm_token', join('np', 'm_', alnum(36))],
];

function scan(text: string, file = 'src/app.js') {
  return findSecrets(text, file, fileKind(file), lineIndex(text));
}

describe('planted secrets', () => {
  it.each(planted)('finds %s in code, with its line, critical, never showing the value', (rule, value) => {
    const text = `import x from 'y';\n\nconst client = connect({\n  credential: '${value}',\n});\n`;
    const findings = scan(text);
    expect(findings).toEqual([
      expect.objectContaining({ rule, severity: 'critical', file: 'src/app.js', line: 4 }),
    ]);
    const shown = JSON.stringify(findings);
    expect(shown).not.toContain(value);
    expect(shown).not.toContain(value.slice(-12));
    expect(findings[0]!.fingerprint).toMatch(/^sha256:[0-9a-f]{12}$/);
  });

  it.each([
    ['an RSA key (PKCS#1)', rsaPem],
    ['an EC key (PKCS#8)', ecPem],
    ['an OpenSSH key', openssh],
  ])('finds %s as one finding at its first line', (_name, pem) => {
    const text = `# deploy key\n${pem}\n`;
    const findings = scan(text, 'keys/deploy.pem');
    expect(findings).toEqual([
      expect.objectContaining({ rule: 'secret.private_key', severity: 'critical', line: 2 }),
    ]);
    expect(JSON.stringify(findings)).not.toContain(pem.split('\n')[1]);
  });

  it('finds an AWS secret access key and a HubSpot API key by their names', () => {
    const text = join(
      'aws_secret_access_key = ',
      randomBytes(30).toString('base64'),
      '\n',
      'HUBSPOT_URL=https://api.example.com/?hapikey=',
      uuid(),
      '\n',
    );
    expect(scan(text, '.env').map((f) => [f.rule, f.line])).toEqual([
      ['secret.aws_secret_key', 1],
      ['secret.hubspot_api_key', 2],
    ]);
  });

  it('finds high-entropy values assigned to key, secret and token names (high, with a fingerprint)', () => {
    const value = alnum(40);
    const text = `export const config = {\n  clientSecret: "${value}",\n};\n`;
    expect(scan(text)).toEqual([
      expect.objectContaining({
        rule: 'secret.generic',
        severity: 'high',
        line: 2,
        fingerprint: expect.any(String),
      }),
    ]);
    expect(scan(`API_TOKEN=${value}\n`, '.env.production').map((f) => f.rule)).toEqual(['secret.generic']);
  });

  it('finds a password literal, without a fingerprint (a hash of a guessable value can be tested)', () => {
    const findings = scan(`const db = { user: 'app', password: 'Winter2025!' };\n`);
    expect(findings).toEqual([expect.objectContaining({ rule: 'secret.password', severity: 'high' })]);
    expect(findings[0]!.fingerprint).toBeUndefined();
  });

  it('finds a JWT and credentials in a URL', () => {
    const jwt = join(
      Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url'),
      '.',
      Buffer.from('{"sub":"svc-sync"}').toString('base64url'),
      '.',
      alnum(43),
    );
    const text = `const t = '${jwt}';\nconst db = 'postgres://sync:${alnum(12)}@db.internal:5432/crm';\n`;
    expect(scan(text).map((f) => [f.rule, f.severity, f.line])).toEqual([
      ['secret.jwt', 'high', 1],
      ['secret.url_credentials', 'critical', 2],
    ]);
  });

  it('finds a secret deep in a long minified line, past the DLP window', () => {
    const value = join('gh', 'p_', alnum(36));
    const text = `${'var a=1;'.repeat(20_000)}var k="${value}";${'var b=2;'.repeat(10_000)}`;
    const findings = scan(text, 'dist/app.min.js');
    expect(findings.map((f) => [f.rule, f.line])).toEqual([['secret.github_token', 1]]);
  });

  it('reports a secret that straddles two scan windows once', () => {
    const value = join('sk', '_live_', alnum(24));
    const at = 64 * 1024 - 4096 - 10;
    const text = `${'/'.repeat(at)}\nconst k = '${value}';\n`;
    expect(scan(text).map((f) => f.rule)).toEqual(['secret.stripe_key']);
  });
});

describe('hostile files', () => {
  it('reports a file packed with key/token words as not fully scanned, and still finds fixed-format keys in it', () => {
    const text = `${'key=token='.repeat(20_000)}\n${rsaPem}\nconst t = '${join('np', 'm_', alnum(36))}';\n`;
    expect(scan(text).map((f) => [f.rule, f.line])).toEqual([
      ['secret.private_key', 2],
      ['secret.npm_token', text.split('\n').findIndex((l) => l.startsWith('const t')) + 1],
      ['bundle.unscanned', 1],
    ]);
  });
});

describe('no false alarms in ordinary app code', () => {
  it.each([
    ['a token read from a response', 'const accessToken = body.access_token;'],
    ['a storage key name', "export const tokenStorageKey = 'call-notes-lite.access_token';"],
    ['a token endpoint URL', "const tokenUrl = 'https://gatehouse.example.com/oauth/token';"],
    ['a bearer header built from a variable', 'headers.authorization = `Bearer ${accessToken}`;'],
    ['an environment reference', 'const apiKey = process.env.GATEHOUSE_API_KEY;'],
    ['a placeholder', "const apiKey = 'your-api-key-here';"],
    ['a path', "const keyFile = './keys/public/signing-key-2024.pem';"],
    ['words joined by dashes', "const cacheKey = 'contacts-page-size-50';"],
    ['a PKCE verifier generated at run time', 'const codeVerifier = oauth.generateRandomCodeVerifier();'],
    [
      'a package-lock integrity hash',
      '"integrity": "sha512-8N28E+a/oxfXWBgOMt+ZP/JUf/XR+IFbvkAEPP3gznXOMv9Bp"',
    ],
    ['an e-mail address', "const support = 'it-helpdesk@example.com';"],
    ['a comment about keys', '// the private key never leaves the IdP; we only see the public JWKS'],
  ])('%s', (_name, line) => {
    expect(scan(`${line}\n`)).toEqual([]);
  });

  it('does not flag a clean .env.example or a lockfile', () => {
    expect(
      scan('GATEHOUSE_URL=http://127.0.0.1:8080\nGATEHOUSE_CLIENT_ID=call-notes\n', '.env.example'),
    ).toEqual([]);
    const lock = JSON.stringify(
      {
        packages: {
          'node_modules/js-tokens': {
            version: '4.0.0',
            resolved: 'https://registry.npmjs.org/js-tokens/-/js-tokens-4.0.0.tgz',
            integrity: `sha512-${randomBytes(64).toString('base64')}`,
          },
        },
      },
      null,
      2,
    );
    expect(scan(lock, 'package-lock.json')).toEqual([]);
  });
});
