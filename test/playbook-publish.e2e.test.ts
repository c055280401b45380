import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;
beforeAll(async () => {
  demo = await startDemo();
});
afterAll(async () => {
  await demo?.stop();
});

/** What /readyz says of the control state: its revision and the playbook version in force. */
async function controlDetail(): Promise<string> {
  const body = (await (await fetch(`${demo.url}/readyz`)).json()) as {
    checks: Record<string, { detail?: string }>;
  };
  return body.checks.control?.detail ?? '';
}

describe('gatehouse playbook publish', () => {
  it('puts a new playbook in force on the running node, audited; a broken one is refused in one line', async () => {
    const file = join(demo.dataDir, 'playbook-candidate.yaml');
    const builtIn = readFileSync(new URL('../policies/playbooks.yaml', import.meta.url), 'utf8');
    writeFileSync(file, `${builtIn}\n# tightened after the quarterly review\n`);
    const published = await gatehouseAsync([
      'playbook',
      'publish',
      file,
      '--reason',
      'quarterly review',
      '--data-dir',
      demo.dataDir,
      '--json',
    ]);
    expect(published.code, published.stderr).toBe(0);
    const { version, previous } = JSON.parse(published.stdout) as { version: string; previous: string };
    expect(version).toMatch(/^[0-9a-f]{12}$/);
    expect(version).not.toBe(previous);
    await expect.poll(controlDetail, { timeout: 10_000 }).toContain(`playbook ${version}`);

    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const events = (await (await demo.get('/audit/v1/events?limit=1000', carol)).json()) as {
      records: { event: { action: string; resource_id: string; reason: string } }[];
    };
    const event = events.records.map((r) => r.event).find((e) => e.action === 'playbook.publish');
    expect(event).toMatchObject({ resource_id: version });
    expect(event?.reason).toContain('quarterly review');

    writeFileSync(file, 'version: 1\nrules: [not, a, playbook\n');
    const broken = await gatehouseAsync([
      'playbook',
      'publish',
      file,
      '--reason',
      'typo',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr.trim().split('\n')).toHaveLength(1);
    expect(broken.stderr).toMatch(/^gatehouse: .*playbook-candidate\.yaml/);
    expect(await controlDetail()).toContain(`playbook ${version}`);

    const shown = await gatehouseAsync(['playbook', 'show', '--data-dir', demo.dataDir, '--json']);
    expect(JSON.parse(shown.stdout)).toEqual({ version });
  }, 90_000);
});
