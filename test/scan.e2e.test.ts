import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipArchive } from '../src/scan/test-support.js';
import { gatehouse } from './support/cli.js';

const fixtures = fileURLToPath(new URL('./fixtures/bundles/', import.meta.url));
const clean = join(fixtures, 'clean');
const dirty = join(fixtures, 'dirty');

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-scan-cli-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface JsonReport {
  findings: { rule: string; severity: string; file: string; line: number; message: string }[];
  counts: Record<string, number>;
  summary: { critical: number; bypass: boolean; unpinned: number; lockfile_missing: boolean };
}

describe('gatehouse scan', () => {
  it('passes the clean example bundle: exit 0, no findings', () => {
    const result = gatehouse(['scan', clean]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^no findings: 13 files/);
    expect(result.stderr).toBe('');
  });

  it('fails the dirty example bundle: exit 1, every finding with file:line', () => {
    const result = gatehouse(['scan', dirty]);
    expect(result.code).toBe(1);
    for (const where of [
      '.env:1',
      'keys/deploy_key.pem:1',
      'src/config.js:4',
      'src/sync.js:10',
      'package.json:11',
    ]) {
      expect(result.stdout).toContain(where);
    }
    expect(result.stdout).toMatch(/^CRITICAL {2}secret\.hubspot_token/);
    expect(result.stdout.trim().split('\n').at(-1)).toMatch(
      /^15 findings \(6 critical, 4 high, 4 medium, 1 low\)/,
    );
  });

  it('answers JSON for CI with the summary the admission policies read, and no secret in it', () => {
    const result = gatehouse(['scan', dirty, '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.findings).toHaveLength(15);
    for (const f of report.findings) {
      expect(f).toEqual(
        expect.objectContaining({
          rule: expect.any(String),
          file: expect.any(String),
          line: expect.any(Number),
        }),
      );
    }
    expect(report.summary).toMatchObject({ critical: 6, bypass: true, unpinned: 4, lockfile_missing: true });
    const planted =
      readFileSync(join(dirty, 'src', 'config.js'), 'utf8').match(/'([A-Za-z0-9/+]{30,})'/g) ?? [];
    expect(planted.length).toBeGreaterThan(0);
    for (const value of planted) expect(result.stdout).not.toContain(value.slice(1, -1));
  });

  it('scans a .tgz made by tar', () => {
    const out = join(dir, 'dirty.tgz');
    expect(spawnSync('tar', ['czf', out, '-C', dirty, '.']).status).toBe(0);
    const result = gatehouse(['scan', out, '--json']);
    expect(result.code).toBe(1);
    expect((JSON.parse(result.stdout) as JsonReport).counts).toEqual({
      critical: 6,
      high: 4,
      medium: 4,
      low: 1,
    });
  });

  it('exits 0 when only medium and low findings remain, still listing them', () => {
    const root = join(dir, 'unpinned');
    cpSync(clean, root, { recursive: true });
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ ...pkg, dependencies: { oauth4webapi: '^3.8.8' } }),
    );
    const result = gatehouse(['scan', root]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('deps.unpinned');
  });

  it('fails a zip with a zip-slip entry name', () => {
    const out = join(dir, 'slip.zip');
    writeFileSync(out, zipArchive([{ name: '../../outside.js', data: 'x' }]));
    const result = gatehouse(['scan', out]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('bundle.path_traversal');
  });

  it('exits 2 with one line for what is not a bundle, and JSON with --json', () => {
    const notBundle = join(dir, 'notes.txt');
    writeFileSync(notBundle, 'hello');
    const result = gatehouse(['scan', notBundle]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/not a folder.*\[BUNDLE_INVALID\]$/),
    ]);
    const json = gatehouse(['scan', join(dir, 'missing'), '--json']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'BUNDLE_INVALID', message: expect.any(String) },
    });
  });

  it('shows progress on stderr for a big bundle, keeping stdout clean', () => {
    const root = join(dir, 'big');
    cpSync(clean, root, { recursive: true });
    writeFileSync(
      join(root, 'public', 'data.js'),
      `export const rows = [\n${'  [1, "row", true],\n'.repeat(480_000)}];\n`,
    );
    const result = gatehouse(['scan', root, '--json']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/scanning .*big: \d+\/\d+/);
    expect((JSON.parse(result.stdout) as JsonReport).findings).toEqual([]);
  });

  it('documents its exit codes in --help', () => {
    const result = gatehouse(['scan', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout.replace(/\s+/g, ' ')).toContain(
      'exit 1 on critical or high findings, 2 when the bundle cannot be read',
    );
  });
});
