import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerPolicyCommands } from '../cli/commands/policy.js';
import { defaultPolicyDir } from './library.js';
import { defaultFiles, writeLibrary } from './test-support.js';

let dir: string;
let dataDir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-'));
  dataDir = join(dir, 'data');
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

/** Runs `gatehouse <args>` in-process; returns the exit code and what was printed. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((err += String(chunk)), true));
  const program = new Command('gatehouse').exitOverride();
  registerPolicyCommands(program);
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'gatehouse', ...args, '--data-dir', dataDir]);
  } finally {
    vi.restoreAllMocks();
  }
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = undefined;
  return { code, out, err };
}

async function manifestFile(name: string, manifest: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return path;
}

const notes = {
  name: 'call-notes',
  owner: 'alice@example.com',
  purpose: 'log call notes on my accounts',
  scopes: ['read:contact.basic', 'write:contact.note'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback'],
};

describe('gatehouse policy check', () => {
  it('exits 0 on approve and prints the decision with the rule', async () => {
    const result = await run('policy', 'check', await manifestFile('ok.json', notes));
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^approve/);
    expect(result.out).toContain('admission.baseline');
  });

  it('exits 3 on review and 1 on deny, with --json', async () => {
    const review = await run(
      'policy',
      'check',
      await manifestFile('r.json', { ...notes, scopes: ['read:contact.reach'] }),
      '--json',
    );
    expect(review.code).toBe(3);
    expect(JSON.parse(review.out)).toMatchObject({
      decision: 'review',
      rules: [{ id: 'admission.sensitive-data-review' }],
    });
    const deny = await run(
      'policy',
      'check',
      await manifestFile('d.yaml', `${JSON.stringify({ ...notes, telemetry: false })}\n`),
    );
    expect(deny.code).toBe(1);
    expect(deny.out).toContain('admission.telemetry-required');
  });

  it('exits 2 with one clear line for a manifest that is not valid or does not parse', async () => {
    const invalid = await run(
      'policy',
      'check',
      await manifestFile('bad.json', { ...notes, scopes: ['read:*'] }),
    );
    expect(invalid.code).toBe(2);
    expect(invalid.err.trim().split('\n')).toHaveLength(1);
    expect(invalid.err).toContain('scopes[0]');
    const garbled = await run('policy', 'check', await manifestFile('garbled.json', '{ "name": "x", '));
    expect(garbled.code).toBe(2);
    expect(garbled.err.trim().split('\n')).toHaveLength(1);
    expect(garbled.err).not.toMatch(/\n\s+at /);
    const missing = await run('policy', 'check', join(dir, 'nope.json'));
    expect(missing.code).toBe(2);
  });

  it('judges the deploy gate', async () => {
    const file = await manifestFile('deploy.json', notes);
    expect((await run('policy', 'check', file, '--deploy')).code).toBe(1);
    expect((await run('policy', 'check', file, '--deploy', '--approved')).code).toBe(0);
  });
});

describe('gatehouse policy test, simulate and publish', () => {
  it('passes the shipped test cases', async () => {
    for (const file of ['runtime.yaml', 'admission.yaml']) {
      const result = await run('policy', 'test', join(defaultPolicyDir(), 'tests', file));
      expect(result.out).not.toContain('FAIL');
      expect(result.code).toBe(0);
    }
  });

  it('exits 1 when a case fails, naming it', async () => {
    const cases = join(dir, 'cases.json');
    await writeFile(
      cases,
      JSON.stringify([
        {
          name: 'wrong on purpose',
          principal: { id: 'alice', role: 'sales_rep', territory: 'EMEA' },
          action: 'read',
          resource: { object: 'contact', id: 'c', territory: 'NA', owner: 'x' },
          expect: 'allow',
        },
      ]),
    );
    const result = await run('policy', 'test', cases);
    expect(result.code).toBe(1);
    expect(result.out).toContain('FAIL  wrong on purpose: expected allow, got deny');
  });

  it('simulates a candidate library and lists the decisions that change', async () => {
    const files = (await defaultFiles()).filter((f) => f.path !== 'runtime/territory.cedar');
    files.push({
      path: 'runtime/territory.cedar',
      text:
        '@id("runtime.sales-everywhere")\n@reason("sales read every territory")\n' +
        'permit (principal in Gatehouse::Role::"sales_rep", action == Gatehouse::Action::"read", resource);\n',
    });
    const candidate = await writeLibrary(files);
    const result = await run(
      'policy',
      'simulate',
      '--candidate',
      candidate,
      '--requests',
      join(defaultPolicyDir(), 'tests', 'runtime.yaml'),
      '--json',
    );
    const body = JSON.parse(result.out) as { changed: { name: string; after: { decision: string } }[] };
    expect(body.changed.map((c) => c.name)).toEqual([
      'a rep cannot read a contact of another territory',
      "a rep's contact list is filtered to her territory",
      'a manager aggregates opportunities of his territory',
    ]);
  });

  it('publishes a library into the data dir and uses it afterwards', async () => {
    const published = await run('policy', 'publish', defaultPolicyDir(), '--json');
    const { version } = JSON.parse(published.out) as { version: string };
    const check = await run('policy', 'check', await manifestFile('p.json', notes), '--json');
    expect(JSON.parse(check.out)).toMatchObject({ version });
  });
});
