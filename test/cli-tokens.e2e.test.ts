import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouse } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

let demo: Demo;

beforeAll(async () => {
  demo = await startDemo();
});

afterAll(async () => {
  await demo?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
      events.records.some((r) => r.event.action.startsWith('token.revoke') && r.event.actor_id === 'cli'),
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
