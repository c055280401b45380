import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appSecretPrefix, userSecretPrefix } from '../src/catalog/index.js';
import type { SecretStore } from '../src/secrets/index.js';
import { gatehouseAsync, loginAs } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import { expectProblem, json } from './support/http.js';

/**
 * Offboarding on the data dir of a running server: the leaver's apps stop (or change hands), no token
 * of theirs or of their apps works within a second, their secrets are gone, and the archive of their
 * audit events verifies offline. Needs the built CLI (`npm run build`).
 */

let demo: Demo;
let secrets: SecretStore;
const cliTimeout = 180_000;
const cli = (...args: string[]) => gatehouseAsync([...args, '--data-dir', demo.dataDir]);

interface Archive {
  format: string;
  bundles: { events: { index: number; event: Record<string, string> }[] }[];
}

interface Report {
  user: string;
  apps: { app_id: string; action: string; to?: string }[];
  secrets_removed: string[];
  archive: { file: string; events: number; checkpoint_size: number };
}

async function statusWithin(token: string, status: number, ms: number, path = '/crm/v1/accounts?limit=1') {
  const started = Date.now();
  for (;;) {
    const response = await demo.get(path, token);
    if (response.status === status || Date.now() - started > ms) return response.status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function register(user: string, name: string, owner: string): Promise<void> {
  const token = await demo.accessToken(user, 'console', user === 'dave' ? 'admin' : 'maker');
  const response = await demo.send('POST', '/admin/v1/apps', token, {
    json: {
      name,
      owner,
      purpose: 'see the accounts of my territory',
      scopes: ['read:account.basic'],
      data_classes: ['internal'],
      retention_days: 30,
      expected_users: 5,
      telemetry: true,
      redirect_uris: ['http://localhost:5173/callback'],
    },
  });
  expect(response.status).toBe(201);
}

beforeAll(async () => {
  demo = await startDemo();
  secrets = demo.secrets;
});

afterAll(async () => {
  await demo?.stop();
});

describe('gatehouse offboard user', () => {
  let report: Report;
  const tokens: Record<string, string> = {};

  it(
    "suspends the leaver's apps and leaves no working token of them or of the user",
    async () => {
      await register('alice', 'alice-accounts', 'alice@example.com');
      tokens.own = await demo.accessToken('alice', 'alice-accounts', 'read:account.basic');
      tokens.demoApp = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
      // bob's app, used by alice: her user tokens must stop too.
      tokens.othersApp = await demo.accessToken('alice', 'pipeline-dashboard', 'read:account.basic');
      tokens.erin = await demo.accessToken('erin', 'pipeline-dashboard', 'read:account.basic');
      for (const token of Object.values(tokens)) expect(await statusWithin(token, 200, 0)).toBe(200);
      await secrets.putIfAbsent(`${appSecretPrefix('alice-accounts')}webhook-key`, Buffer.from('k1'));
      await secrets.putIfAbsent(`${userSecretPrefix('alice@example.com')}crm-refresh`, Buffer.from('k2'));
      await secrets.putIfAbsent(`${appSecretPrefix('pipeline-dashboard')}webhook-key`, Buffer.from('k3'));

      await loginAs(demo.dataDir, 'dave');
      const result = await cli('offboard', 'user', 'alice@example.com', '--json');
      expect(result.code, result.stderr).toBe(0);
      report = JSON.parse(result.stdout) as Report;
      expect(report.apps).toEqual([
        { app_id: 'alice-accounts', action: 'suspended' },
        { app_id: 'call-notes', action: 'suspended' },
      ]);

      expect(await statusWithin(tokens.own, 401, 1000)).toBe(401);
      expect(await statusWithin(tokens.demoApp, 401, 1000)).toBe(401);
      expect(await statusWithin(tokens.othersApp, 401, 1000)).toBe(401);
      // Nobody else is touched.
      expect(await statusWithin(tokens.erin, 200, 0)).toBe(200);
      const exchange = await demo.exchange('alice', 'alice-accounts', 'read:account.basic');
      expect(((await exchange.json()) as { error: string }).error).toBe('invalid_client');
    },
    cliTimeout,
  );

  it('removes the secrets keyed to the user and to their apps, and no others', async () => {
    expect([...report.secrets_removed].sort()).toEqual([
      `${appSecretPrefix('alice-accounts')}webhook-key`,
      `${userSecretPrefix('alice@example.com')}crm-refresh`,
    ]);
    expect(await secrets.get(`${appSecretPrefix('alice-accounts')}webhook-key`)).toBeUndefined();
    expect(await secrets.get(`${userSecretPrefix('alice@example.com')}crm-refresh`)).toBeUndefined();
    expect(await secrets.get(`${appSecretPrefix('pipeline-dashboard')}webhook-key`)).toBeDefined();
  });

  it(
    "archives the user's and their apps' events as bundles that verify offline, and a tampered one does not",
    async () => {
      const archive = JSON.parse(readFileSync(report.archive.file, 'utf8')) as Archive;
      expect(archive.format).toBe('gatehouse-archive');
      const events = archive.bundles.flatMap((b) => b.events.map((e) => e.event));
      expect(events.length).toBe(report.archive.events);
      expect(
        events.every(
          (e) => e.actor_id === 'alice@example.com' || ['alice-accounts', 'call-notes'].includes(e.app_id),
        ),
      ).toBe(true);
      const actions = events.map((e) => e.action);
      expect(actions).toEqual(
        expect.arrayContaining(['app.register', 'crm.list', 'app.suspend', 'token.revoke_all']),
      );
      // The events carry no tokens.
      expect(JSON.stringify(archive)).not.toContain(tokens.own);

      const key = (await cli('audit', 'public-key')).stdout.trim();
      const verified = await cli('offboard', 'verify', report.archive.file, '--public-key', key);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toMatch(
        /^archive intact: \d+ events in 1 evidence bundle, proven against a signed checkpoint/,
      );

      const tampered = structuredClone(archive);
      const first = tampered.bundles[0]?.events.find((e) => e.event.action === 'app.suspend');
      if (!first) throw new Error('no suspension in the archive');
      first.event.reason = 'nothing happened here';
      const file = `${report.archive.file}.tampered.json`;
      writeFileSync(file, JSON.stringify(tampered));
      const refused = await cli('offboard', 'verify', file, '--public-key', key);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toBe(
        `gatehouse: the archive does not verify: event ${first.index} does not hash to its leaf hash [AUDIT_INTEGRITY]`,
      );
    },
    cliTimeout,
  );

  it(
    "--transfer-to hands the apps to a new owner: they keep working, the leaver's tokens do not",
    async () => {
      const bob = await demo.accessToken('bob', 'pipeline-dashboard', 'read:account.basic');
      const erin = await demo.accessToken('erin', 'pipeline-dashboard', 'read:account.basic');
      const result = await cli(
        'offboard',
        'user',
        'bob@example.com',
        '--transfer-to',
        'erin@example.com',
        '--json',
      );
      expect(result.code, result.stderr).toBe(0);
      const transfer = JSON.parse(result.stdout) as Report;
      expect(transfer.apps).toEqual([
        { app_id: 'pipeline-dashboard', action: 'transferred', to: 'erin@example.com' },
      ]);
      // Every token of the app is revoked (the leaver may hold copies); new sign-ins work.
      expect(await statusWithin(bob, 401, 1000)).toBe(401);
      expect(await statusWithin(erin, 401, 1000)).toBe(401);
      // A revocation covers the tokens issued up to its second: a new sign-in after it works.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const fresh = await demo.accessToken('erin', 'pipeline-dashboard', 'read:account.basic');
      expect(await statusWithin(fresh, 200, 1000)).toBe(200);
      const shown = JSON.parse((await cli('app', 'show', 'pipeline-dashboard', '--json')).stdout) as {
        owner: string;
        state: string;
        history: { action: string }[];
      };
      expect(shown).toMatchObject({ owner: 'erin@example.com', state: 'approved' });
      expect(shown.history.at(-1)?.action).toBe('transfer');
    },
    cliTimeout,
  );

  it(
    'refuses what makes no sense, with one line',
    async () => {
      const self = await cli('offboard', 'user', 'erin@example.com', '--transfer-to', 'erin@example.com');
      expect(self.code).toBe(1);
      expect(self.stderr.trim().split('\n')).toHaveLength(1);
      expect((await cli('offboard', 'user', 'not-an-email')).code).toBe(1);
    },
    cliTimeout,
  );
});

describe('POST /admin/v1/offboard', () => {
  it('is for admins only, and does the same as the command', async () => {
    await register('erin', 'erin-accounts', 'erin@example.com');
    const erinToken = await demo.accessToken('erin', 'erin-accounts', 'read:account.basic');
    const rita = await demo.accessToken('rita', 'console', 'review');
    const body = { json: { user: 'erin@example.com', reason: 'moved to another company' } };
    await expectProblem(await demo.send('POST', '/admin/v1/offboard', rita, body), 403, 'SCOPE_MISSING');
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const response = await demo.send('POST', '/admin/v1/offboard', dave, body);
    expect(response.status).toBe(200);
    const result = await json<Report>(response);
    // erin received pipeline-dashboard from bob above: she leaves with both.
    expect(result.apps).toEqual([
      { app_id: 'erin-accounts', action: 'suspended' },
      { app_id: 'pipeline-dashboard', action: 'suspended' },
    ]);
    expect(await statusWithin(erinToken, 401, 1000)).toBe(401);
  });
});
