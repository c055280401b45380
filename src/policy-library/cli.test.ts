import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerPolicyCommands } from '../cli/commands/policy.js';
import { userInfo } from 'node:os';
import { auditOrigin, openAuditLog, type AuditEvent } from '../audit/index.js';
import { loadConfig } from '../config/index.js';
import { openSecretService } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import { openDecisionLog } from '../decision-log/index.js';
import {
  authorizeRequest,
  createPolicyCaches,
  recordDecision,
  type Principal,
  type RecordedSimulation,
} from '../policy/index.js';
import { alice, bob } from '../policy/test-support.js';
import { defaultPolicyDir, loadPolicySet } from './files.js';
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
    const changed = new Map(body.changed.map((c) => [c.name, c.after.decision]));
    expect(changed.get('a rep cannot read a contact of another territory')).toBe('allow');
    expect(changed.has("a rep's contact list is filtered to her territory")).toBe(true);
    expect(changed.get('a manager aggregates opportunities of his territory')).toBe('deny');
    expect(changed.has('a bulk export needs an elevation')).toBe(false);
  });

  it('runs the tests of a library directory, or of the active library by default', async () => {
    const mine = await run('policy', 'test', defaultPolicyDir(), '--json');
    expect(mine.code).toBe(0);
    const body = JSON.parse(mine.out) as { files: { file: string; passed: boolean }[] };
    expect(body.files).toEqual([
      { file: 'tests/admission.yaml', passed: true },
      { file: 'tests/runtime.yaml', passed: true },
    ]);
    expect((await run('policy', 'test')).out).toMatch(/passed \(policy version [0-9a-f]{12}\)/);
  });

  it('publishes a library into the data dir, records who and why in the audit trail, and uses it afterwards', async () => {
    const files = await defaultFiles();
    files.push({ path: 'runtime/extra.cedar', text: '// a new version\n' });
    const published = await run(
      'policy',
      'publish',
      await writeLibrary(files),
      '--reason',
      'add a placeholder file',
      '--json',
    );
    expect(published.code).toBe(0);
    const { version, previous } = JSON.parse(published.out) as { version: string; previous: string };
    expect(previous).toMatch(/^[0-9a-f]{12}$/);
    const check = await run('policy', 'check', await manifestFile('p.json', notes), '--json');
    expect(JSON.parse(check.out)).toMatchObject({ version });

    const again = await run(
      'policy',
      'publish',
      defaultPolicyDir(),
      '--reason',
      'back to the built-in library',
    );
    expect(again.code).toBe(0);
    expect(again.out).toContain(`(was ${version},`);

    const events = (await auditEvents()).filter((e) => e.action === 'policy.publish');
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      actor_id: 'operator (unverified, local)',
      actor_role: 'operator',
      resource_type: 'policy_library',
      resource_id: version,
      outcome: 'allow',
      policy_version: version,
    });
    expect(events[0]?.reason).toContain(`version ${previous} -> ${version}`);
    expect(events[0]?.reason).toContain('not verified');
    expect(events[0]?.reason).toContain('add a placeholder file');
    // Without a login the local operator acts, unverified; the OS account is noted.
    expect(events[0]?.reason).toContain(`os user ${userInfo().username}`);
    expect(events[1]).toMatchObject({ actor_id: 'operator (unverified, local)', resource_id: previous });
    expect(events[1]?.reason).toContain(`version ${version} -> ${previous}`);
  });

  it('refuses a publish without a reason or with an invalid library, recording nothing', async () => {
    const before = (await auditEvents()).length;
    const files = await defaultFiles();
    files.push({
      path: 'runtime/bad.cedar',
      text: '@id("runtime.bad")\n@reason("x")\npermit (principal, action, resource) when { 1 };\n',
    });
    await expect(
      run('policy', 'publish', await writeLibrary(files), '--reason', 'broken'),
    ).rejects.toMatchObject({
      code: 'POLICY_INVALID',
    });
    await expect(run('policy', 'publish', defaultPolicyDir(), '--reason', '   ')).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    expect(await auditEvents()).toHaveLength(before);
  });
});

describe('gatehouse policy simulate over recorded decisions', () => {
  it('replays what was recorded under a candidate and counts the changes per rule with example request ids', async () => {
    const policies = await loadPolicySet();
    const store = await openGatehouseStore(loadConfig({ env: {}, overrides: { dataDir } }));
    const log = openDecisionLog(store.db);
    const caches = createPolicyCaches();
    const ask = (requestId: string, principal: Principal, action: 'read' | 'export', territory?: string) => {
      const input = {
        principal,
        action,
        object: 'contact',
        ...(territory && {
          resource: { id: `c-${requestId}`, territory, owner: 'x@example.com', account: 'a1' },
        }),
        context: {
          fields: ['first_name'],
          recordCount: action === 'export' ? 150 : 1,
          ip: '127.0.0.0/24',
          time: new Date(),
        },
      };
      log.record(recordDecision(requestId, input, authorizeRequest(policies, input, caches)));
    };
    ask('r-alice-emea', alice, 'read', 'EMEA');
    ask('r-alice-na', alice, 'read', 'NA');
    ask('r-alice-list', alice, 'read');
    ask('r-bob-export', bob, 'export');
    await log.close();
    await store.close();

    // The candidate lets reps read every territory and drops the manager's export.
    const files = (await defaultFiles()).filter(
      (f) => f.path !== 'runtime/territory.cedar' && f.path !== 'runtime/export.cedar',
    );
    files.push({
      path: 'runtime/territory.cedar',
      text:
        '@id("runtime.sales-everywhere")\n@reason("sales read every territory")\n' +
        'permit (principal in Gatehouse::Role::"sales_rep", action == Gatehouse::Action::"read", resource);\n',
    });
    const result = await run(
      'policy',
      'simulate',
      '--candidate',
      await writeLibrary(files),
      '--since',
      '1h',
      '--json',
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out) as RecordedSimulation;
    expect(report.total).toBe(4);
    expect(report.recorded).toEqual({ [policies.version]: 4 });
    expect(report.changes.deny_to_allow).toEqual({
      count: 1,
      rules: [{ rule: 'runtime.sales-everywhere', count: 1, examples: ['r-alice-na'] }],
    });
    expect(report.changes.allow_to_deny).toEqual({
      count: 1,
      rules: [{ rule: 'default-deny', count: 1, examples: ['r-bob-export'] }],
    });
    expect(report.changes.row_filter_changed).toEqual({
      count: 1,
      rules: [{ rule: 'runtime.sales-everywhere', count: 1, examples: ['r-alice-list'] }],
    });
    expect(report.unchanged).toBe(1);

    const human = await run('policy', 'simulate', '--candidate', await writeLibrary(files));
    expect(human.out).toContain('deny → allow: 1');
    expect(human.out).toContain('runtime.sales-everywhere  1  e.g. r-alice-na');
    expect(human.out).toContain('3 of 4 decisions would change');
    // Nothing recorded in the window: nothing to replay.
    const future = await run(
      'policy',
      'simulate',
      '--candidate',
      defaultPolicyDir(),
      '--since',
      '2999-01-01T00:00:00Z',
      '--json',
    );
    expect(JSON.parse(future.out)).toMatchObject({ total: 0 });
    await expect(
      run('policy', 'simulate', '--candidate', defaultPolicyDir(), '--since', 'last week'),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
  });
});

async function auditEvents(): Promise<AuditEvent[]> {
  const config = loadConfig({ env: {}, overrides: { dataDir } });
  const store = await openGatehouseStore(config);
  try {
    const audit = await openAuditLog({
      db: store.db,
      secrets: (await openSecretService(config, store.db)).secrets,
      origin: auditOrigin,
    });
    try {
      return (await audit.events({ limit: 1000 })).records.map((r) => r.event);
    } finally {
      await audit.close();
    }
  } finally {
    await store.close();
  }
}
