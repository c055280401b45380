import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCases } from './cases.js';
import { defaultPlaybookFile, loadPlaybook, parsePlaybook } from './playbook.js';

const playbookFile = defaultPlaybookFile();
const casesFile = join(dirname(playbookFile), 'tests', 'playbooks.yaml');
const playbook = loadPlaybook(playbookFile);

describe('the shipped playbook', () => {
  const results = runCases(readFileSync(casesFile, 'utf8'), casesFile, playbook);
  it.each(results.map((r) => [r.name, r] as const))('%s', (_name, result) => {
    expect(result.problems).toEqual([]);
  });
});

describe('playbook validation', () => {
  const valid = 'version: 1\nplaybooks:\n  - rule: "*"\n    actions: [alert]\n';

  it('has a stable version: the hash of its text', () => {
    expect(parsePlaybook(valid, 'a').version).toBe(parsePlaybook(valid, 'b').version);
    expect(parsePlaybook(`${valid}# changed\n`, 'a').version).not.toBe(parsePlaybook(valid, 'a').version);
  });

  it.each([
    ['an unknown action', valid.replace('[alert]', '[alert, delete_everything]'), /actions/],
    ['an unknown rule', valid.replace('"*"', 'mass_exports'), /rule/],
    ['a rule left uncovered', valid.replace('"*"', 'mass_export'), /no entry covers rule off_hours_bulk/],
    [
      'a rule covered only from high',
      `${valid.replace('"*"', 'mass_export')}    min_severity: high\n`,
      /severity low/,
    ],
    ['an unknown key', `${valid}extra: 1\n`, /extra/],
    ['not YAML', 'playbooks: [', /not valid YAML/],
    ['no version', valid.replace('version: 1\n', ''), /version/],
  ])('refuses %s, naming the problem', (_name, text, message) => {
    expect(() => parsePlaybook(text, 'playbooks.yaml')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) }),
    );
  });

  it('the first matching entry decides; severity thresholds apply', () => {
    const book = parsePlaybook(
      [
        'version: 1',
        'playbooks:',
        '  - { rule: mass_export, min_severity: high, actions: [alert, suspend_app] }',
        '  - { rule: mass_export, actions: [throttle_app] }',
        '  - { rule: "*", actions: [alert] }',
      ].join('\n'),
      'p',
    );
    expect(book.actionsFor('mass_export', 'critical')).toEqual(['alert', 'suspend_app']);
    expect(book.actionsFor('mass_export', 'medium')).toEqual(['throttle_app']);
    expect(book.actionsFor('new_network', 'critical')).toEqual(['alert']);
  });
});
