import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeManifest, type PolicySet } from '../policy/index.js';
import { loadPolicySet } from '../policy-library/index.js';
import { scanBundle, scanSummary, type ScanProgress, type ScanReport } from './index.js';
import { tarArchive, zipArchive } from './test-support.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/bundles/', import.meta.url));
const clean = join(fixtures, 'clean');
const dirty = join(fixtures, 'dirty');

let dir: string;
let policies: PolicySet;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-scan-'));
  policies = await loadPolicySet();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function filesOf(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((p) => statSync(join(root, p)).isFile())
    .map((p) => p.split('\\').join('/'))
    .sort();
}

const has = (tool: string) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;

/** The bundle as a .zip: the system `zip` where there is one, else our own writer. */
function zipOf(root: string, name: string): string {
  const out = join(dir, `${name}.zip`);
  if (has('zip')) {
    expect(spawnSync('zip', ['-qr', out, '.'], { cwd: root }).status).toBe(0);
  } else {
    writeFileSync(
      out,
      zipArchive(filesOf(root).map((p) => ({ name: p, data: readFileSync(join(root, p)) }))),
    );
  }
  return out;
}

/** The bundle as npm pack lays it out (`package/...`) in a .tgz: the system `tar` where there is one. */
function tgzOf(root: string, name: string): string {
  const out = join(dir, `${name}.tgz`);
  if (has('tar')) {
    const staging = join(dir, `${name}-staging`);
    cpSync(root, join(staging, 'package'), { recursive: true });
    expect(spawnSync('tar', ['czf', out, '-C', staging, 'package']).status).toBe(0);
  } else {
    const entries = filesOf(root).map((p) => ({ name: `package/${p}`, data: readFileSync(join(root, p)) }));
    writeFileSync(out, tarArchive(entries));
  }
  return out;
}

const summaryOf = (report: ScanReport) =>
  report.findings.map((f) => `${f.severity} ${f.rule} ${f.file}${f.line ? `:${f.line}` : ''}`);

const manifest = JSON.parse(readFileSync(join(clean, 'gatehouse.manifest.json'), 'utf8')) as unknown;

describe('the clean example bundle', () => {
  it.each(['folder', 'zip', 'tgz'])('has no findings as a %s', async (form) => {
    const path = form === 'folder' ? clean : form === 'zip' ? zipOf(clean, 'clean') : tgzOf(clean, 'clean');
    const report = await scanBundle(path);
    expect(summaryOf(report)).toEqual([]);
    expect(report.files).toBe(filesOf(clean).length);
    expect(report.counts).toEqual({ critical: 0, high: 0, medium: 0, low: 0 });
  });

  it('leaves the admission decision as it was', async () => {
    const report = await scanBundle(clean);
    const result = judgeManifest(policies, manifest, { scan: scanSummary(report) });
    expect(result.decision).toBe('approve');
  });
});

describe('the dirty example bundle', () => {
  const expected = [
    'critical secret.hubspot_token .env:1',
    'critical secret.salesforce_refresh .env:2',
    'critical secret.private_key keys/deploy_key.pem:1',
    'critical secret.aws_access_key src/config.js:4',
    'critical secret.aws_secret_key src/config.js:5',
    'critical secret.salesforce_session src/sync.js:7',
    'high crm.sdk_dependency package.json:11',
    'high secret.generic src/config.js:10',
    'high crm.direct_call src/sync.js:10',
    'high crm.direct_call src/sync.js:16',
    'medium deps.lockfile_missing package.json',
    'medium deps.unpinned package.json:11',
    'medium deps.unpinned package.json:12',
    'medium deps.remote_source package.json:13',
    'low deps.unpinned package.json:17',
  ];

  it.each(['folder', 'zip', 'tgz'])(
    'finds every planted problem, with file and line, as a %s',
    async (form) => {
      const path = form === 'folder' ? dirty : form === 'zip' ? zipOf(dirty, 'dirty') : tgzOf(dirty, 'dirty');
      const report = await scanBundle(path);
      const prefix = form === 'tgz' ? 'package/' : '';
      expect(summaryOf(report)).toEqual(expected.map((e) => e.replace(/ (\S+)$/, ` ${prefix}$1`)));
    },
  );

  it('never shows a planted value in the report', async () => {
    const report = JSON.stringify(await scanBundle(dirty));
    for (const file of filesOf(dirty)) {
      const text = readFileSync(join(dirty, file), 'utf8');
      for (const value of text.match(/[A-Za-z0-9!/+._-]{20,}/g) ?? []) {
        if (/FAKE|EXAMPLE|0000|[!/]/.test(value)) expect(report).not.toContain(value);
      }
    }
  });

  it('summarises for the admission policies, which refuse the app', async () => {
    const summary = scanSummary(await scanBundle(dirty));
    expect(summary).toEqual({
      critical: 6,
      high: 4,
      medium: 4,
      low: 1,
      bypass: true,
      unpinned: 4,
      lockfile_missing: true,
      unscanned: 0,
    });
    const result = judgeManifest(policies, manifest, { scan: summary });
    expect(result.decision).toBe('deny');
    expect(result.rules.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        'admission.scan-critical',
        'admission.scan-crm-bypass',
        'admission.scan-high',
        'admission.scan-unpinned-deps',
      ]),
    );
    // Approval by a reviewer does not let an embedded key through at deploy.
    const deploy = judgeManifest(policies, manifest, { scan: summary, action: 'deploy', approved: true });
    expect(deploy.rules.map((r) => r.id)).toEqual(['admission.scan-critical', 'admission.scan-crm-bypass']);
  });
});

describe('scanBundle', () => {
  it('accepts a lockfile of a workspace root for its packages', async () => {
    const root = join(dir, 'workspace');
    cpSync(clean, join(root, 'apps', 'notes'), { recursive: true });
    rmSync(join(root, 'apps', 'notes', 'package-lock.json'));
    writeFileSync(join(root, 'package.json'), '{ "private": true, "workspaces": ["apps/*"] }');
    writeFileSync(join(root, 'package-lock.json'), '{ "lockfileVersion": 3 }');
    expect(summaryOf(await scanBundle(root))).toEqual([]);
    rmSync(join(root, 'package-lock.json'));
    expect(summaryOf(await scanBundle(root))).toEqual([
      'medium deps.lockfile_missing apps/notes/package.json',
    ]);
  });

  it('reports progress up to the whole bundle', async () => {
    const seen: ScanProgress[] = [];
    await scanBundle(tgzOf(clean, 'progress'), { onProgress: (p) => seen.push(p) });
    const last = seen.at(-1)!;
    expect(last.done).toBe(last.total);
    expect(last.entries).toBeGreaterThanOrEqual(filesOf(clean).length);
    expect(seen.every((p, i) => i === 0 || p.done >= seen[i - 1]!.done)).toBe(true);
  });

  it('is a TypeError to pass bad limits (a caller mistake, not bad input)', async () => {
    await expect(scanBundle(clean, { limits: { maxEntries: 0 } })).rejects.toThrow(TypeError);
    await expect(scanBundle('')).rejects.toThrow(TypeError);
  });

  it('lists the bundle paths relative to its root', async () => {
    const report = await scanBundle(dirty);
    for (const f of report.findings)
      expect(relative(dirty, join(dirty, f.file)).startsWith('..')).toBe(false);
  });
});
