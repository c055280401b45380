import { describe, expect, it } from 'vitest';
import {
  MAX_SCAN_LENGTH,
  UNSCANNED_MARKER,
  applyDlp,
  redactText,
  scanText,
  type DlpAction,
  type DlpRule,
  type DetectorKind,
  type Finding,
} from './index.js';

const f = (start: number, end: number, kind: DetectorKind = 'email', confidence = 0.9): Finding => ({
  kind,
  start,
  end,
  confidence,
  detector: kind,
});

describe('redactText', () => {
  it('replaces each span with [redacted:kind] by default', () => {
    expect(redactText('mail jane@acme.example now', [f(5, 22)])).toBe('mail [redacted:email] now');
  });

  it('uses the replacement given', () => {
    expect(redactText('abcdef', [f(1, 3, 'secret')], (x) => `<${x.detector}>`)).toBe('a<secret>def');
  });

  it('accepts findings in any order', () => {
    expect(redactText('0123456789', [f(6, 8, 'iban'), f(1, 3, 'us_ssn')])).toBe(
      '0[redacted:us_ssn]345[redacted:iban]89',
    );
  });

  it('merges overlapping findings into one placeholder, of the most confident', () => {
    expect(redactText('0123456789', [f(1, 5, 'phone', 0.6), f(3, 8, 'payment_card', 0.9)])).toBe(
      '0[redacted:payment_card]89',
    );
  });

  it('returns the text unchanged with no findings', () => {
    expect(redactText('nothing here', [])).toBe('nothing here');
  });

  it('throws a TypeError for a finding outside the text (a caller mistake)', () => {
    expect(() => redactText('short', [f(2, 50)])).toThrow(TypeError);
    expect(() => redactText('short', [f(3, 2)])).toThrow(TypeError);
    expect(() => redactText('short', [f(-1, 2)])).toThrow(TypeError);
  });
});

describe('applyDlp', () => {
  const inbound: DlpRule[] = [
    { kinds: ['payment_card', 'us_ssn', 'uk_nino'], action: 'refuse' },
    { kinds: ['secret'], action: 'redact' },
  ];

  it('refuses an incoming note body that holds a card number, and still redacts the text it returns', () => {
    const result = applyDlp('Customer read out 4111 1111 1111 1111 on the call', inbound);
    expect(result.action).toBe('refuse');
    expect(result.text).toBe('Customer read out [redacted:payment_card] on the call');
    expect(result.findings.map((x) => x.detector)).toEqual(['payment_card.visa']);
  });

  it('refuses an incoming note body that holds a national id', () => {
    expect(applyDlp('NI number AB 12 34 56 C', inbound).action).toBe('refuse');
    expect(applyDlp('SSN 078-05-1120', inbound).action).toBe('refuse');
  });

  it('redacts what an outgoing field should not carry and reports it for the event', () => {
    const rules: DlpRule[] = [{ kinds: ['secret', 'payment_card', 'iban'], action: 'redact' }];
    const result = applyDlp('Use AKIAIOSFODNN7EXAMPLE to pay GB82 WEST 1234 5698 7654 32', rules);
    expect(result).toEqual({
      action: 'redact',
      text: 'Use [redacted:secret] to pay [redacted:iban]',
      findings: scanText('Use AKIAIOSFODNN7EXAMPLE to pay GB82 WEST 1234 5698 7654 32', {
        kinds: ['secret', 'iban'],
      }),
    });
  });

  it('lets the strongest action win when findings call for different ones', () => {
    const result = applyDlp('token AKIAIOSFODNN7EXAMPLE, card 4111111111111111', inbound);
    expect(result.action).toBe('refuse');
    expect(result.text).toBe('token [redacted:secret], card [redacted:payment_card]');
  });

  it('takes the strongest action when two rules name the same kind', () => {
    const rules: DlpRule[] = [
      { kinds: ['email'], action: 'allow' },
      { kinds: ['email'], action: 'redact' },
    ];
    expect(applyDlp('jane@acme.example', rules).action).toBe('redact');
  });

  it('allows and leaves untouched what only allow rules cover', () => {
    const text = 'jane@acme.example 4111 1111 1111 1111';
    expect(applyDlp(text, [{ kinds: ['email'], action: 'allow' }])).toEqual({
      action: 'allow',
      text,
      findings: [],
    });
    expect(applyDlp(text, [])).toEqual({ action: 'allow', text, findings: [] });
  });

  it('allows text in which no rule finds anything', () => {
    expect(applyDlp('Follow up next week about the renewal.', inbound)).toEqual({
      action: 'allow',
      text: 'Follow up next week about the renewal.',
      findings: [],
    });
  });

  it('fails closed on text past MAX_SCAN_LENGTH: refused, or cut and marked (card hidden after padding)', () => {
    const text = `${'x '.repeat(MAX_SCAN_LENGTH / 2)}4111 1111 1111 1111`;
    expect(applyDlp(text, inbound).action).toBe('refuse');
    const redacted = applyDlp(text, [{ kinds: ['payment_card'], action: 'redact' }]);
    expect(redacted.action).toBe('redact');
    expect(redacted.text.endsWith(UNSCANNED_MARKER)).toBe(true);
    expect(redacted.text).not.toContain('4111');
  });

  it('throws a TypeError for an unknown kind or action (a configuration mistake)', () => {
    expect(() => applyDlp('x', [{ kinds: ['passport' as DetectorKind], action: 'refuse' }])).toThrow(
      TypeError,
    );
    expect(() => applyDlp('x', [{ kinds: ['email'], action: 'block' as DlpAction }])).toThrow(TypeError);
    expect(() => applyDlp('x', null as unknown as DlpRule[])).toThrow(TypeError);
  });
});
