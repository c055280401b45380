import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginAs, logout } from './support/cli.js';
import { testDatabaseEnvSync } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';

/** `npm test` builds dist/ first; run `npm run build` before this file alone. */
const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
const cliTimeout = 180_000;

let demo: Demo;

/** The built CLI without blocking this process: the demo server in it must answer while the CLI runs. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args, '--data-dir', demo.dataDir],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...testDatabaseEnvSync(demo.dataDir) },
        timeout: 120_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface DrillResult {
  user: string;
  off_hours: boolean;
  records_read: number;
  cut_off_ms: number;
  token_refused_status: number;
  token_refused_code: string;
  detected_after_event_ms: number | null;
  detected_after_append_ms: number | null;
  incident: { id: string; rule: string; severity: string; containment: string[] };
  new_token_after_containment: { status: number };
  evidence: { file: string; events: number; verified: boolean };
  restored: { lifted: string[]; new_token_status: number } | null;
}

beforeAll(async () => {
  demo = await startDemo({ config: { 'detect.enabled': true } });
});

afterAll(async () => {
  await demo?.stop();
});

describe('gatehouse drill mass-export', () => {
  let drill: DrillResult;

  it(
    'replays the attack against a running demo: detected, token refused within a second, evidence verified, restored',
    async () => {
      const run = await cli('drill', 'mass-export', '--url', demo.url, '--json');
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      drill = JSON.parse(run.stdout) as DrillResult;
      expect(drill.incident).toMatchObject({ rule: 'mass_export', severity: 'high' });
      // One user's export through the app: that user's tokens are revoked, the app stays up.
      expect(drill.incident.containment).toEqual([`revoke_user_tokens user:${drill.user} applied`]);
      expect(drill).toMatchObject({
        records_read: 200,
        token_refused_status: 401,
        token_refused_code: 'TOKEN_REVOKED',
      });
      expect(drill.cut_off_ms).toBeLessThan(1000);
      expect(drill.detected_after_append_ms).not.toBeNull();
      expect(drill.evidence.verified).toBe(true);
      expect(drill.restored).toMatchObject({ lifted: [], new_token_status: 200 });
      console.log(`drill: ${JSON.stringify({ ...drill, evidence: { ...drill.evidence, file: '...' } })}`);
    },
    cliTimeout,
  );

  it(
    'prints a human report when run without --json',
    async () => {
      // Another user: erin's second export within the hour would be off-hours bulk reads as well.
      const run = await cli('drill', 'mass-export', '--url', demo.url, '--user', 'alice');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(
        /tokens stopped working\s+\+\d+\.\d{3} s \(401 TOKEN_REVOKED\), \d+ ms after the refused read/,
      );
      expect(run.stdout).toMatch(/evidence bundle\s+\S+\.json/);
      expect(run.stderr).toContain('paging through contacts');
    },
    cliTimeout,
  );

  it(
    'the incident commands list, show, export and verify the evidence offline, and catch a tampered bundle',
    async () => {
      const list = await cli('incident', 'list', '--rule', 'mass_export');
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(drill.incident.id);
      expect(list.stdout).toMatch(/closed\s+high\s+mass_export/);

      const show = await cli('incident', 'show', drill.incident.id);
      expect(show.stdout).toMatch(/timeline:\n.*detected/);
      expect(show.stdout).toMatch(/closed\s+dave@example\.com/);

      const out = join(demo.dataDir, 'cli-evidence.json');
      const exported = await cli('incident', 'evidence', drill.incident.id, '--out', out);
      expect(exported.code).toBe(0);
      expect(exported.stdout).toMatch(/audit events with inclusion proofs against checkpoint \d+/);
      const verified = await cli('incident', 'verify', out);
      expect(verified.code).toBe(0);
      expect(verified.stdout).toMatch(/^evidence bundle verified: \d+ events/);

      const bundle = JSON.parse(readFileSync(out, 'utf8')) as {
        events: Array<{ event: { record_count?: number } }>;
      };
      bundle.events[0].event.record_count = 1;
      writeFileSync(out, JSON.stringify(bundle));
      const tampered = await cli('incident', 'verify', out);
      expect(tampered.code).toBe(1);
      expect(tampered.stdout).toMatch(/NOT verified: .*\[LEAF_HASH_MISMATCH\]/);
    },
    cliTimeout,
  );

  it(
    'refuses to close an incident twice and names an unknown one, one line each',
    async () => {
      // Locally, as the unverified operator, and as dave through the admin API after gatehouse login.
      const local = await cli('incident', 'close', drill.incident.id, '--reason', 'again');
      expect(local.code).toBe(1);
      expect(local.stderr.trim().split('\n')).toHaveLength(1);
      expect(local.stderr).toContain('closed already');
      await loginAs(demo.dataDir, 'dave');
      const again = await cli('incident', 'close', drill.incident.id, '--reason', 'again');
      await logout(demo.dataDir);
      expect(again.code).toBe(1);
      expect(again.stderr.trim().split('\n')).toHaveLength(1);
      expect(again.stderr).toContain('closed already');
      expect(again.stderr).toContain('[INCIDENT_CONFLICT]');
      const unknown = await cli('incident', 'show', 'inc_nope');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/no incident has this id/);
    },
    cliTimeout,
  );
});
