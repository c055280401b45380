import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;

beforeAll(async () => {
  demo = await startDemo();
});

afterAll(async () => {
  await demo?.stop();
});

interface Row {
  object: string;
  field: string;
  metadata: string;
  sample?: { sampled: number; evidence: Record<string, number> };
  sampled?: string;
  override?: { dataClass: string; actor: string };
  effective: string;
}

const classify = (...args: string[]) => gatehouse(['classify', ...args, '--data-dir', demo.dataDir]);

describe('gatehouse classify, beside a running server on the same data dir', () => {
  it('samples the demo notes and classes note.body pii from the phone numbers pasted into it', () => {
    const result = classify('--object', 'note', '--sample-size', '1200', '--json');
    expect(result.code).toBe(0);
    const { records } = JSON.parse(result.stdout) as { records: Row[] };
    const body = records.find((r) => r.field === 'body')!;
    expect(body).toMatchObject({ metadata: 'internal', sampled: 'pii', effective: 'pii' });
    expect(body.sample!.evidence.phone).toBeGreaterThan(0);
    expect(result.stdout).not.toMatch(/\+\d{6,}/); // evidence is counts, never a number itself
  });

  it('prints the table for people', () => {
    const result = classify('--object', 'contact', '--no-sample');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^OBJECT\s+FIELD\s+METADATA\s+SAMPLED EVIDENCE\s+OVERRIDE\s+EFFECTIVE$/);
    expect(lines.find((l) => /^contact\s+email\s/.test(l))).toMatch(/pii\s+not sampled\s+-\s+pii$/);
  });

  it('applies an override that lands in the audit trail the server serves', async () => {
    const set = classify(
      'set',
      'note.body',
      'internal',
      '--reason',
      'numbers in notes are our own switchboard',
      '--as',
      'dave@example.com',
    );
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('note.body: overridden to internal');

    const table = JSON.parse(classify('--object', 'note', '--no-sample', '--json').stdout) as {
      records: Row[];
    };
    expect(table.records.find((r) => r.field === 'body')).toMatchObject({
      sampled: 'pii',
      override: { dataClass: 'internal', actor: 'dave@example.com' },
      effective: 'internal',
    });

    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const response = await demo.get('/audit/v1/events?limit=1000', carol);
    const { records } = (await response.json()) as {
      records: { event: { action: string; actor_id: string; resource_id: string; reason: string } }[];
    };
    const events = records.map((r) => r.event);
    expect(events.find((e) => e.action === 'classify.override')).toMatchObject({
      actor_id: 'dave@example.com',
      resource_id: 'note.body',
      reason: expect.stringContaining('effective class pii -> internal'),
    });
    expect(events.find((e) => e.action === 'classify.sample')).toBeDefined();
    expect(gatehouse(['audit', 'verify', '--data-dir', demo.dataDir]).code).toBe(0);
  });

  it('has --help with --json and --data-dir, for the table and each subcommand', () => {
    for (const command of [['classify'], ['classify', 'set'], ['classify', 'clear']]) {
      const result = gatehouse([...command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('--json');
      expect(result.stdout).toContain('--data-dir');
    }
  });

  it('refuses a bad class or field with one line and exit 1, changing nothing', () => {
    for (const args of [
      ['set', 'note.body', 'confidential', '--reason', 'no such class'],
      ['set', 'note.subject', 'pii', '--reason', 'no such field'],
    ]) {
      const result = classify(...args);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/\[INVALID_INPUT\]$/)]);
    }
    const noReason = classify('set', 'note.body', 'pii');
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
    const table = JSON.parse(classify('--object', 'note', '--no-sample', '--json').stdout) as {
      records: Row[];
    };
    expect(table.records.find((r) => r.field === 'body')?.effective).toBe('internal');
  });
});
