import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse, gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;

beforeAll(async () => {
  demo = await startDemo();
});

afterAll(async () => {
  await demo?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('dev id-token and dev token (demo only)', () => {
  it("dev id-token --app issues the ID token to that app's own IdP client", () => {
    const result = gatehouse([
      'dev',
      'id-token',
      '--user',
      'alice',
      '--app',
      'call-notes',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(result.code).toBe(0);
    expect(decodeJwt(result.stdout.trim())).toMatchObject({
      sub: 'alice',
      aud: 'call-notes',
      azp: 'call-notes',
    });
  });

  it("dev token prints an access token by exchange with the app's own ID token", async () => {
    const notes = await gatehouseAsync([
      'dev',
      'token',
      '--user',
      'alice',
      '--app',
      'call-notes',
      '--scope',
      'read:contact.basic',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(notes.code, notes.stderr).toBe(0);
    expect((await demo.get('/crm/v1/contacts?limit=1', notes.stdout.trim())).status).toBe(200);
  });

  it('dev token signs a user in at the console for platform scopes', async () => {
    const admin = await gatehouseAsync([
      'dev',
      'token',
      '--user',
      'dave',
      '--app',
      'console',
      '--scope',
      'admin',
      '--json',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(admin.code, admin.stderr).toBe(0);
    const { access_token: token } = JSON.parse(admin.stdout) as { access_token: string };
    expect(decodeJwt(token)).toMatchObject({ sub: 'dave', scope: 'admin', client_id: 'console' });
    expect((await demo.get('/admin/v1/policies', token)).status).toBe(200);
  });

  it("dev token at the console grants nothing the user's role does not hold", async () => {
    // alice's role holds no admin duty: the sign-in grants her nothing.
    const refused = await gatehouseAsync([
      'dev',
      'token',
      '--user',
      'alice',
      '--app',
      'console',
      '--scope',
      'admin',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('the sign-in did not complete');
  });
});

describe('token commands on a data dir a server is running on', () => {
  it('token revoke --user cuts the user off on the running server within a second, and is audited', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const erin = await demo.accessToken('erin', 'call-notes', 'read:contact.basic');
    expect((await demo.get('/crm/v1/contacts?limit=1', alice)).status).toBe(200);

    const revoked = gatehouse([
      'token',
      'revoke',
      '--user',
      'alice@example.com',
      '--reason',
      'offboarding drill',
      '--json',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(revoked.code).toBe(0);
    await sleep(1000);
    const refused = await demo.get('/crm/v1/contacts?limit=1', alice);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe('TOKEN_REVOKED');
    expect((await demo.get('/crm/v1/contacts?limit=1', erin)).status).toBe(200);

    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const events = (await (await demo.get('/audit/v1/events?limit=1000', carol)).json()) as {
      records: { event: { action: string; actor_id: string } }[];
    };
    expect(
      events.records.some(
        (r) =>
          r.event.action.startsWith('token.revoke') && r.event.actor_id === 'operator (unverified, local)',
      ),
    ).toBe(true);
  });

  it('token revoke needs a target', () => {
    const result = gatehouse(['token', 'revoke', '--reason', 'x', '--data-dir', demo.dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('keys rotate publishes a new key in the JWKS before it signs', async () => {
    const rotated = gatehouse(['keys', 'rotate', '--json', '--data-dir', demo.dataDir]);
    expect(rotated.code).toBe(0);
    const { kid } = JSON.parse(rotated.stdout) as { kid: string };
    let kids: string[] = [];
    // Servers read the key schedule every 5 s; the new key is published long before it signs.
    for (let i = 0; i < 32 && !kids.includes(kid); i++) {
      kids = (
        (await (await demo.get('/.well-known/jwks.json')).json()) as { keys: { kid: string }[] }
      ).keys.map((k) => k.kid);
      if (!kids.includes(kid)) await sleep(250);
    }
    expect(kids).toContain(kid);
    const token = await demo.accessToken('bob', 'call-notes', 'read:contact.basic');
    expect(JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid).not.toBe(kid);
  });
});
