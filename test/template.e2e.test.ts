import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';

// The maker's first steps: the template, then the checks its own CI runs, through the real CLI.
const create = join(import.meta.dirname, '..', 'packages', 'create-gatehouse-app', 'index.js');
const work = mkdtempSync(join(tmpdir(), 'gatehouse-template-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

const createApp = (name: string) =>
  spawnSync(process.execPath, [create, name], { cwd: work, encoding: 'utf8', timeout: 30_000 });

describe('create-gatehouse-app', () => {
  it('makes an app whose least-privilege plan is approved by policy and whose bundle scans clean', () => {
    expect(createApp('visit-log').status).toBe(0);
    const app = join(work, 'visit-log');
    const manifest = JSON.parse(readFileSync(join(app, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'visit-log', scopes: ['read:account.basic'], telemetry: true });
    expect(readFileSync(join(app, 'src', 'App.tsx'), 'utf8')).toContain("clientId: 'visit-log'");
    const check = gatehouse(['policy', 'check', join(app, 'manifest.json'), '--json']);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ decision: 'approve' });
    const scan = gatehouse(['scan', app, '--json']);
    expect(scan.code).toBe(0);
    const findings = (JSON.parse(scan.stdout) as { findings: Array<{ severity: string }> }).findings;
    expect(findings.filter((f) => f.severity === 'high' || f.severity === 'critical')).toEqual([]);
  });

  it('refuses a name that is not a plain app id, and a folder that exists', () => {
    expect(createApp('../escape').status).toBe(2);
    expect(createApp('visit-log').stderr).toMatch(/exists already/);
  });
});
