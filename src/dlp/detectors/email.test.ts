import { describe, expect, it } from 'vitest';
import { scanText } from '../index.js';

const emails = (text: string): string[] =>
  scanText(text, { kinds: ['email'], minConfidence: 0 }).map((f) => text.slice(f.start, f.end));

describe('email detector', () => {
  it('catches addresses with dots, plus tags and subdomains, without trailing punctuation', () => {
    expect(emails('Write to jane.doe@acme.example. Or (bob+crm@mail.co.uk), <x_y@a-b.io>')).toEqual([
      'jane.doe@acme.example',
      'bob+crm@mail.co.uk',
      'x_y@a-b.io',
    ]);
  });

  it('does not catch a handle, a bare domain or a domain without a TLD', () => {
    expect(emails('@jane, ping me at jane@, see acme.example, root@localhost, a@b.c1')).toEqual([]);
  });

  it('does not catch consecutive or edge dots in the local part', () => {
    expect(emails('a..b@acme.example')).toEqual([]);
  });

  it('does not catch labels that start or end with a hyphen', () => {
    expect(emails('jane@-acme.example, jane@acme-.example')).toEqual([]);
  });

  it('raises confidence when "email" is nearby', () => {
    const [plain] = scanText('see jane@acme.example', { kinds: ['email'] });
    const [near] = scanText('email: jane@acme.example', { kinds: ['email'] });
    expect(near!.confidence).toBeGreaterThan(plain!.confidence);
  });
});
