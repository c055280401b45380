import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { gatehouseAsync, loginAs, logout } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import { json } from './support/http.js';

/**
 * The catalog commands on the data dir of a running server: what they change holds on the server
 * within a second. Needs the built CLI (`npm run build`).
 */

let demo: Demo;
let store: Store;
let dir: string;

const bundles = fileURLToPath(new URL('./fixtures/bundles/', import.meta.url));
const manifestOf = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  owner: 'alice@example.com',
  purpose: 'log call notes on my accounts',
  scopes: ['read:account.basic', 'read:contact.basic', 'write:contact.note'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback'],
  ...extra,
});

function writeManifest(name: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(manifestOf(name, extra)));
  return file;
}

/** Each CLI run starts Node and loads the policy engine: seconds on a busy machine. */
const cliTimeout = 180_000;
const cli = (...args: string[]) => gatehouseAsync([...args, '--data-dir', demo.dataDir]);

async function statusWithin(
  token: string,
  status: number,
  ms: number,
  path = '/crm/v1/accounts?limit=1',
): Promise<number> {
  const started = Date.now();
  for (;;) {
    const response = await demo.get(path, token);
    if (response.status === status || Date.now() - started > ms) return response.status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function tokenWithin(user: string, clientId: string, scope: string): Promise<string> {
  const started = Date.now();
  for (;;) {
    const response = await demo.exchange(user, clientId, scope);
    if (response.ok) return (await json<{ access_token: string }>(response)).access_token;
    if (Date.now() - started > 1000) throw new Error(`no token: ${await response.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  demo = await startDemo();
  store = await openGatehouseStore(demo.config);
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-catalog-cli-'));
});

afterAll(async () => {
  await store?.close();
  await demo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the maker's path: check, scan, register", () => {
  it(
    'a clean bundle with a plain plan is approved at once (exit 0) and the running server issues tokens',
    async () => {
      const manifest = join(bundles, 'clean', 'gatehouse.manifest.json');
      expect((await cli('policy', 'check', manifest)).code).toBe(0);
      expect((await cli('scan', join(bundles, 'clean'))).code).toBe(0);
      const result = await cli(
        'app',
        'register',
        manifest,
        '--bundle',
        join(bundles, 'clean'),
        '--as',
        'alice@example.com',
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^approved\s+call-notes-lite/);
      expect(result.stdout).toContain('constraints: 12000 requests a day');
      const token = await tokenWithin('alice', 'call-notes-lite', 'read:contact.basic');
      expect(await statusWithin(token, 200, 0, '/crm/v1/contacts?limit=1')).toBe(200);
      const shown = JSON.parse((await cli('app', 'show', 'call-notes-lite', '--json')).stdout) as {
        scan: { critical: number };
        history: { action: string }[];
      };
      expect(shown.scan.critical).toBe(0);
      expect(shown.history.map((h) => h.action)).toEqual(['register']);
    },
    cliTimeout,
  );

  it(
    'the same plan with the dirty bundle is denied by the scan rules and kept as a draft (exit 1)',
    async () => {
      const result = await cli(
        'app',
        'register',
        writeManifest('lead-sync'),
        '--bundle',
        join(bundles, 'dirty'),
        '--as',
        'alice@example.com',
        '--json',
      );
      expect(result.code).toBe(1);
      const app = JSON.parse(result.stdout) as { state: string; admission: { rules: { id: string }[] } };
      expect(app.state).toBe('draft');
      expect(app.admission.rules.map((r) => r.id)).toEqual(
        expect.arrayContaining(['admission.scan-critical', 'admission.scan-crm-bypass']),
      );
    },
    cliTimeout,
  );

  it(
    'deploy-check passes only the bundle Gatehouse scanned and approved, digest for digest',
    async () => {
      const registered = await cli(
        'app',
        'register',
        writeManifest('gated-notes'),
        '--bundle',
        join(bundles, 'clean'),
        '--as',
        'alice@example.com',
        '--json',
      );
      expect(registered.code).toBe(0);
      const app = JSON.parse(registered.stdout) as { state: string; approved_digest: string };
      expect(app.state).toBe('approved');
      expect(app.approved_digest).toMatch(/^sha256:[0-9a-f]{64}$/);

      const same = await cli('app', 'deploy-check', 'gated-notes', '--bundle', join(bundles, 'clean'));
      expect(same.code).toBe(0);
      expect(same.stdout).toContain(`${app.approved_digest} is the approved bundle`);
      const other = await cli('app', 'deploy-check', 'gated-notes', '--bundle', join(bundles, 'dirty'));
      expect(other.code).not.toBe(0);
      expect(other.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/is not the bundle approved for gated-notes.*\[BUNDLE_NOT_APPROVED\]$/),
      ]);
    },
    cliTimeout,
  );

  it(
    'an invalid manifest fails with one line and a non-zero exit',
    async () => {
      const file = join(dir, 'broken.json');
      writeFileSync(file, JSON.stringify({ name: 'Broken Name', owner: 'nobody' }));
      const result = await cli('app', 'register', file);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('[INVALID_INPUT]');
    },
    cliTimeout,
  );
});

describe("the admin's path: review, suspend", () => {
  it(
    'a plan in review (exit 3) is approved only by someone who neither owns nor registered it',
    async () => {
      const file = writeManifest('phone-list', {
        purpose: 'call the customers of my accounts',
        scopes: ['read:account.basic', 'read:contact.basic', 'read:contact.reach'],
        data_classes: ['internal', 'pii'],
      });
      const registered = await cli('app', 'register', file, '--as', 'alice@example.com');
      expect(registered.code).toBe(3);
      expect(registered.stdout).toContain('review  admission.sensitive-data-review');

      const queue = JSON.parse((await cli('app', 'list', '--needs-review', '--json')).stdout) as {
        records: { id: string }[];
      };
      expect(queue.records.map((r) => r.id)).toContain('phone-list');

      // Without a login the CLI acts as the unverified local operator, who never satisfies separation of duties.
      const anonymous = await cli('app', 'approve', 'phone-list', '--reason', 'ok');
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr.trim()).toBe(
        'gatehouse: approve needs a verified identity and the local operator is unverified: run gatehouse login first [SEPARATION_OF_DUTIES]',
      );
      // A stated identity is no identity: --as is not an option of a decision any more.
      const claimed = await cli('app', 'approve', 'phone-list', '--reason', 'ok', '--as', 'rita@example.com');
      expect(claimed.code).toBe(2);
      expect(claimed.stderr).toContain("unknown option '--as'");

      await loginAs(demo.dataDir, 'alice');
      const own = await cli('app', 'approve', 'phone-list', '--reason', 'ok');
      expect(own.code).toBe(1);
      expect(own.stderr.trim()).toBe('gatehouse: this call needs the review or admin scope [SCOPE_MISSING]');

      await loginAs(demo.dataDir, 'rita');
      const whoami = JSON.parse((await cli('whoami', '--json')).stdout) as {
        verified: boolean;
        user: string;
      };
      expect(whoami).toMatchObject({ verified: true, user: 'rita@example.com' });
      expect(statSync(join(demo.dataDir, 'cli-login.json')).mode & 0o777).toBe(0o600);
      const approved = await cli('app', 'approve', 'phone-list', '--reason', 'calls need phones');
      expect(approved.code, approved.stderr).toBe(0);
      expect(approved.stdout).toMatch(/^phone-list is approved until /);
      const shown = JSON.parse((await cli('app', 'show', 'phone-list', '--json')).stdout) as {
        history: { action: string; actor: string }[];
      };
      expect(shown.history.at(-1)).toMatchObject({ action: 'approve', actor: 'rita@example.com' });
      await tokenWithin('alice', 'phone-list', 'read:contact.reach');
    },
    cliTimeout,
  );

  it(
    'app suspend cuts off every token of the app on the running server within a second',
    async () => {
      const token = await tokenWithin('alice', 'phone-list', 'read:account.basic');
      expect(await statusWithin(token, 200, 0)).toBe(200);
      // Logged out, a suspension (always safe) still runs locally, recorded as the unverified operator.
      await logout(demo.dataDir);
      expect(JSON.parse((await cli('whoami', '--json')).stdout)).toMatchObject({ verified: false });
      const suspended = await cli('app', 'suspend', 'phone-list', '--reason', 'incident 7', '--json');
      expect(suspended.code, suspended.stderr).toBe(0);
      expect((JSON.parse(suspended.stdout) as { state: string }).state).toBe('suspended');
      expect(await statusWithin(token, 401, 1000)).toBe(401);
      const shown = JSON.parse((await cli('app', 'show', 'phone-list', '--json')).stdout) as {
        history: { action: string; actor: string }[];
      };
      expect(shown.history.at(-1)).toMatchObject({
        action: 'suspend',
        actor: 'operator (unverified, local)',
      });

      const csv = await cli('app', 'list', '--state', 'suspended', '--format', 'csv');
      expect(csv.code).toBe(0);
      const [header, ...rows] = csv.stdout.trim().split('\r\n');
      expect(header).toBe(
        'id,name,owner,state,scopes,data_classes,risk_score,risk,approved_by,approved_until,last_used_at,created_at',
      );
      expect(rows.map((r) => r.split(',')[0])).toEqual(['phone-list']);
    },
    cliTimeout,
  );

  it(
    'suggest-scopes proposes fewer scopes for an app that never used some of them',
    async () => {
      const token = await tokenWithin('alice', 'call-notes-lite', 'read:contact.basic');
      expect((await demo.get('/crm/v1/contacts?limit=2&fields=first_name,last_name', token)).status).toBe(
        200,
      );
      const result = await cli('app', 'suggest-scopes', 'call-notes-lite', '--since', '1d', '--json');
      expect(result.code).toBe(0);
      const suggestion = JSON.parse(result.stdout) as { suggested: string[]; drop: string[] };
      expect(suggestion.suggested).toEqual(['read:contact.basic']);
      expect(suggestion.drop).toEqual(['write:contact.note']);
      const human = await cli('app', 'suggest-scopes', 'call-notes-lite', '--since', '1d');
      expect(human.stdout).toContain('drop:     write:contact.note');
    },
    cliTimeout,
  );
});

describe('unused apps', () => {
  let receiver: Server;
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  let failuresLeft = 1;
  const secret = 'a-long-enough-webhook-secret';

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ headers: request.headers, body });
        // The first delivery fails: the notice must be retried.
        response.statusCode = failuresLeft-- > 0 ? 503 : 204;
        response.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });

  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it(
    '--unused 30d flags an app idle for 40 days and --notify tells its owner once, signed and retried',
    async () => {
      const registered = await cli(
        'app',
        'register',
        writeManifest('idle-report'),
        '--as',
        'alice@example.com',
      );
      expect(registered.code, registered.stderr).toBe(0);
      const fortyDaysAgo = new Date(Date.now() - 40 * 86_400_000).toISOString();
      await store.db
        .updateTable('apps')
        .set({ approved_at: fortyDaysAgo, created_at: fortyDaysAgo })
        .where('id', '=', 'idle-report')
        .execute();
      const port = (receiver.address() as AddressInfo).port;
      const config = join(dir, 'gatehouse.yaml');
      writeFileSync(
        config,
        `net:\n  allowPrivateDestinations: ['127.0.0.1/32']\ncatalog:\n  webhook:\n    url: http://127.0.0.1:${port}/hooks/unused\n    secret: ${secret}\n    backoffMs: 50\n`,
      );

      const flagged = await cli('app', 'list', '--unused', '30d', '--json');
      const ids = (JSON.parse(flagged.stdout) as { records: { id: string }[] }).records.map((r) => r.id);
      expect(ids).toContain('idle-report');
      expect(ids).not.toContain('call-notes-lite');

      const notified = await cli(
        'app',
        'list',
        '--unused',
        '30d',
        '--state',
        'approved',
        '--notify',
        '--config',
        config,
      );
      expect(notified.code, notified.stdout + notified.stderr).toBe(0);
      expect(notified.stdout).toMatch(/notified\s+idle-report \(alice@example.com\)/);
      const deliveries = received.filter((r) => JSON.parse(r.body).app_id === 'idle-report');
      expect(deliveries).toHaveLength(2);
      const [failed, delivered] = deliveries as [(typeof received)[0], (typeof received)[0]];
      expect(delivered.headers['x-gatehouse-delivery']).toBe(failed.headers['x-gatehouse-delivery']);
      const timestamp = delivered.headers['x-gatehouse-timestamp'] as string;
      const expected = `v1=${createHmac('sha256', secret).update(`${timestamp}.${delivered.body}`).digest('hex')}`;
      expect(delivered.headers['x-gatehouse-signature']).toBe(expected);
      expect(JSON.parse(delivered.body)).toMatchObject({
        type: 'gatehouse.app.unused',
        app_id: 'idle-report',
        owner: 'alice@example.com',
        last_used_at: null,
        idle_since: fortyDaysAgo,
        threshold_days: 30,
      });

      // One notice per idle stretch: the next run does not send it again.
      const again = await cli(
        'app',
        'list',
        '--unused',
        '30d',
        '--state',
        'approved',
        '--notify',
        '--config',
        config,
      );
      expect(again.stdout).toMatch(/already_notified\s+idle-report/);
      expect(received.filter((r) => JSON.parse(r.body).app_id === 'idle-report')).toHaveLength(2);
    },
    cliTimeout,
  );

  it(
    'a receiver that keeps failing makes --notify exit 1 naming the failure, and it is audited',
    async () => {
      failuresLeft = 100;
      await store.db
        .updateTable('apps')
        .set({ unused_notified_at: null })
        .where('id', '=', 'idle-report')
        .execute();
      const port = (receiver.address() as AddressInfo).port;
      const config = join(dir, 'failing.yaml');
      writeFileSync(
        config,
        `net:\n  allowPrivateDestinations: ['127.0.0.1/32']\ncatalog:\n  webhook:\n    url: http://127.0.0.1:${port}/hooks/unused\n    secret: ${secret}\n    retries: 1\n    backoffMs: 20\n`,
      );
      const result = await cli(
        'app',
        'list',
        '--unused',
        '30d',
        '--state',
        'approved',
        '--notify',
        '--config',
        config,
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(
        'failed           idle-report (alice@example.com): the webhook answered 503 after 2 attempts',
      );
      const carol = await demo.accessToken('carol', 'console', 'audit:read');
      const events = await json<{ records: { event: Record<string, string> }[] }>(
        await demo.get('/audit/v1/events?app_id=idle-report&limit=1000', carol),
      );
      const notices = events.records.map((r) => r.event).filter((e) => e.action === 'app.notify_unused');
      expect(notices.map((e) => e.outcome)).toEqual(['allow', 'error']);
      expect(JSON.stringify(events)).not.toContain(secret);
    },
    cliTimeout,
  );

  it(
    'a webhook on loopback is refused at connect time unless net.allowPrivateDestinations names it',
    async () => {
      await store.db
        .updateTable('apps')
        .set({ unused_notified_at: null })
        .where('id', '=', 'idle-report')
        .execute();
      const before = received.length;
      const port = (receiver.address() as AddressInfo).port;
      const config = join(dir, 'no-allow-list.yaml');
      writeFileSync(
        config,
        `catalog:\n  webhook:\n    url: http://localhost:${port}/hooks/unused\n    secret: ${secret}\n    backoffMs: 20\n`,
      );
      const result = await cli(
        'app',
        'list',
        '--unused',
        '30d',
        '--state',
        'approved',
        '--notify',
        '--config',
        config,
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(
        /failed\s+idle-report \(alice@example.com\): the webhook was refused: localhost resolves to (127\.0\.0\.1|::1) \(loopback\), not a public address.* after 1 attempts/,
      );
      expect(received.length).toBe(before);
    },
    cliTimeout,
  );
});
