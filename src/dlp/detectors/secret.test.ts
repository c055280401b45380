import { describe, expect, it } from 'vitest';
import { scanText } from '../index.js';

// Test tokens are assembled at run time so that the source holds nothing a secret scanner would flag.
const join = (...parts: string[]): string => parts.join('');
const AWS_KEY = join('AKIA', 'IOSFODNN7EXAMPLE');
const GITHUB_CLASSIC = join('ghp', '_', 'R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s0K');
const GITHUB_FINE = join('github', '_pat_', '11ABCDEFG0123456789abc', '_', 'x'.repeat(20), 'Y7z'.repeat(13));
const SLACK = join('xo', 'xb-', '123456789012-1234567890123-', 'AbCdEfGhIjKlMnOpQrStUvWx');
const STRIPE_LIVE = join('sk', '_live_', '4eC39HqLyjWDarjtT1zdp7dc');
const GOOGLE = join('AI', 'za', 'SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe');
const JWT = join(
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
  '.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ',
  '.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
);

const secrets = (text: string, minConfidence = 0.5): { detector: string; value: string }[] =>
  scanText(text, { kinds: ['secret'], minConfidence }).map((f) => ({
    detector: f.detector,
    value: text.slice(f.start, f.end),
  }));

describe('secret detectors', () => {
  it.each([
    ['secret.aws_access_key', AWS_KEY],
    ['secret.github_token', GITHUB_CLASSIC],
    ['secret.github_pat', GITHUB_FINE],
    ['secret.slack_token', SLACK],
    ['secret.stripe_key', STRIPE_LIVE],
    ['secret.google_api_key', GOOGLE],
    ['secret.jwt', JWT],
  ])('catches %s on its own in prose', (detector, value) => {
    expect(secrets(`please use ${value} for now`)).toEqual([{ detector, value }]);
  });

  it('catches a Slack user token with four numeric and hex parts', () => {
    const token = join(
      'xo',
      'xp-',
      '1234567890-1234567890-1234567890123-',
      '0123456789abcdef0123456789abcdef',
    );
    expect(secrets(`token ${token}`)).toEqual([{ detector: 'secret.slack_token', value: token }]);
  });

  it('does not catch vendor prefixes with the wrong length or alphabet', () => {
    const text = [
      join('AKIA', 'IOSFODNN7EXAMP'),
      join('AKIA', 'iosfodnn7example'),
      join('ghp', '_', 'short'),
      join('sk', '_live_', 'abc'),
      join('AI', 'za', 'tooShort'),
      'xoxb-notanumber',
    ].join(' ');
    expect(secrets(text, 0)).toEqual([]);
  });

  it('does not catch a vendor token embedded in a longer word', () => {
    expect(
      secrets(`prefix${AWS_KEY}suffix`, 0).filter((s) => s.detector === 'secret.aws_access_key'),
    ).toEqual([]);
  });

  it('does not catch three base64url parts that are not a JWT (header names no alg)', () => {
    const notJwt = join(Buffer.from('{"typ":"x"}').toString('base64url'), '.eyJzdWIiOiIxIn0.sig');
    expect(secrets(notJwt, 0)).toEqual([]);
  });

  it('catches a Stripe test key with less confidence than a live one', () => {
    const [test] = scanText(join('sk', '_test_', '4eC39HqLyjWDarjtT1zdp7dc'), { kinds: ['secret'] });
    const [live] = scanText(STRIPE_LIVE, { kinds: ['secret'] });
    expect(test!.detector).toBe('secret.stripe_test_key');
    expect(test!.confidence).toBeLessThan(live!.confidence);
  });

  it('covers a whole PEM private key, body included, not just its header', () => {
    const pem = [
      '-----BEGIN RSA PRIVATE KEY-----',
      'MIIEowIBAAKCAQEA0Z3VS5JJcds3',
      '-----END RSA PRIVATE KEY-----',
    ];
    const text = `key:\n${pem.join('\n')}\nthanks`;
    expect(secrets(text)).toEqual([{ detector: 'secret.private_key', value: pem.join('\n') }]);
  });

  it('covers a truncated PEM private key up to the end of its base64 lines', () => {
    const text = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA==\n\n';
    const [found] = secrets(text);
    expect(found!.value).toBe('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA==');
  });

  it('does not catch a PEM public key or certificate', () => {
    expect(secrets('-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----', 0)).toEqual([]);
    expect(secrets('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', 0)).toEqual([]);
  });

  it('catches a random-looking value assigned to a key, secret or token name, and only the value', () => {
    const text =
      'config: api_key = "9f8Ka7Lm2Qx4Zr6Tb1Nc3Vd5" and "client_secret": "Qm9vT2xkU2VjcmV0VmFsdWUx"';
    expect(secrets(text)).toEqual([
      { detector: 'secret.generic', value: '9f8Ka7Lm2Qx4Zr6Tb1Nc3Vd5' },
      { detector: 'secret.generic', value: 'Qm9vT2xkU2VjcmV0VmFsdWUx' },
    ]);
  });

  it('does not catch low-entropy or placeholder values next to key words', () => {
    const text =
      'token: aaaaaaaaaaaaaaaaaaaa, secret=${SECRET}, key: null, the key insight is simple, token count 12';
    expect(secrets(text)).toEqual([]);
  });

  it('catches a password in an assignment or after "password is", but not prose about passwords', () => {
    expect(secrets('password: hunter2')).toEqual([{ detector: 'secret.password', value: 'hunter2' }]);
    expect(secrets('my password is Tr0ub4dor&3')).toEqual([
      { detector: 'secret.password', value: 'Tr0ub4dor&3' },
    ]);
    expect(secrets('the password is required; reset your password today')).toEqual([]);
  });

  it('catches a bearer token and credentials in a URL', () => {
    const bearer = secrets('Authorization: Bearer 0a1B2c3D4e5F6g7H8i9J0kLmN');
    expect(bearer).toEqual([{ detector: 'secret.bearer_token', value: '0a1B2c3D4e5F6g7H8i9J0kLmN' }]);
    const url = secrets('db at postgres://admin:s3cr3t@db.internal.example/app');
    expect(url).toEqual([
      { detector: 'secret.url_credentials', value: 'postgres://admin:s3cr3t@db.internal.example' },
    ]);
  });

  it('raises confidence of a vendor token when "key" or the vendor is named nearby', () => {
    const [plain] = scanText(`x ${AWS_KEY}`, { kinds: ['secret'] });
    const [near] = scanText(`aws access key ${AWS_KEY}`, { kinds: ['secret'] });
    expect(near!.confidence).toBeGreaterThan(plain!.confidence);
  });
});
