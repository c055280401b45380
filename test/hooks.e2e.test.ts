import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hookChallengeType } from '../src/catalog/index.js';
import { startDemo, type Demo } from './support/demo.js';
import { json } from './support/http.js';

/**
 * Audit hooks through the real server: the challenge a receiver must answer before its hook counts as
 * telemetry, and the connect-time address check of the guarded egress (DNS is stood in for, so public-
 * looking names resolve to loopback or to the metadata service; the receiver's certificate is its own).
 */

const names: Record<string, string> = {
  'hooks.example.test': '127.0.0.1',
  'rebind.example.test': '127.0.0.2',
  'metadata.example.test': '169.254.169.254',
};

const lookup: LookupFunction = (hostname, options, callback) => {
  const address = names[hostname];
  if (address === undefined) {
    const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return callback(error, '', 0);
  }
  if (options.all) (callback as (e: null, a: unknown) => void)(null, [{ address, family: 4 }]);
  else callback(null, address, 4);
};

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-hooks-'));
let demo: Demo;
let carol: string;
const receivers: Server[] = [];
const hits: { host: string; path: string; body: string }[] = [];
let port: number;
let portOnRebind: number;

function receiver(host: string): Promise<Server> {
  const server = createServer(
    { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) },
    (request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        hits.push({ host, path: request.url ?? '', body });
        if (request.url === '/consenting') {
          const { challenge } = JSON.parse(body) as { challenge: string };
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ challenge }));
        } else if (request.url === '/redirect') {
          response.writeHead(302, { location: 'https://169.254.169.254/latest/meta-data/' }).end();
        } else {
          response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        }
      });
    },
  );
  receivers.push(server);
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}

beforeAll(async () => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=hooks.example.test',
      '-addext',
      `subjectAltName=${Object.keys(names)
        .map((n) => `DNS:${n}`)
        .join(',')}`,
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  port = ((await receiver('127.0.0.1')).address() as AddressInfo).port;
  portOnRebind = ((await receiver('127.0.0.2')).address() as AddressInfo).port;
  demo = await startDemo({
    config: { 'net.allowPrivateDestinations': ['127.0.0.1/32'] },
    start: { egress: { lookup, ca: readFileSync(join(dir, 'cert.pem'), 'utf8') } },
  });
  carol = await demo.accessToken('carol', 'console', 'audit:read');
});

afterAll(async () => {
  await demo?.stop();
  await Promise.all(receivers.map((r) => new Promise((resolve) => r.close(resolve))));
  rmSync(dir, { recursive: true, force: true });
});

const plan = (name: string, hook: string) => ({
  name,
  owner: 'alice@example.com',
  purpose: 'see the accounts of my territory',
  scopes: ['read:account.basic'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: false,
  audit_hook: hook,
  redirect_uris: ['http://localhost:5173/callback'],
});

async function registerWithHook(name: string, hook: string) {
  const maker = await demo.accessToken('alice', 'console', 'maker');
  const response = await demo.send('POST', '/admin/v1/apps', maker, { json: plan(name, hook) });
  expect(response.status).toBe(201);
  const app = await json<{ state: string }>(response);
  const events = await json<{ records: { event: Record<string, string> }[] }>(
    await demo.get(`/audit/v1/events?app_id=${name}&limit=100`, carol),
  );
  const challenge = events.records.map((r) => r.event).find((e) => e.action === 'app.audit_hook.challenge');
  return { app, challenge };
}

describe('an audit hook is verified by a signed challenge before it counts', () => {
  it('a receiver that echoes the challenge stands in for telemetry', async () => {
    const { app, challenge } = await registerWithHook(
      'hooked-consenting',
      `https://hooks.example.test:${port}/consenting`,
    );
    expect(app.state).toBe('approved');
    expect(challenge).toMatchObject({ outcome: 'allow', actor_id: 'alice@example.com' });
    const sent = hits.find((h) => h.path === '/consenting');
    expect(JSON.parse(sent?.body ?? '{}')).toMatchObject({
      type: hookChallengeType,
      app_id: 'hooked-consenting',
      challenge: expect.stringMatching(/^[\w-]+\.[\w-]{43}$/),
    });
  });

  it('a receiver that answers 200 without echoing the challenge does not count', async () => {
    const { app, challenge } = await registerWithHook(
      'hooked-silent',
      `https://hooks.example.test:${port}/silent`,
    );
    expect(app.state).not.toBe('approved');
    expect(challenge).toMatchObject({ outcome: 'deny' });
    expect(challenge?.reason).toContain('did not echo the challenge');
    expect(hits.some((h) => h.path === '/silent')).toBe(true);
  });

  it('a name that resolves to a loopback address outside the allow-list is refused and never contacted', async () => {
    const { app, challenge } = await registerWithHook(
      'hooked-rebind',
      `https://rebind.example.test:${portOnRebind}/consenting`,
    );
    expect(app.state).not.toBe('approved');
    expect(challenge?.reason).toContain('was refused: rebind.example.test resolves to 127.0.0.2');
    expect(hits.filter((h) => h.host === '127.0.0.2')).toHaveLength(0);
  });

  it('a name that resolves to 169.254.169.254 is refused at connect time', async () => {
    const { app, challenge } = await registerWithHook(
      'hooked-metadata',
      'https://metadata.example.test/latest/meta-data/',
    );
    expect(app.state).not.toBe('approved');
    expect(challenge?.reason).toContain('resolves to 169.254.169.254 (linkLocal), not a public address');
  });

  it('a redirect (to the metadata service) is not followed', async () => {
    const { app, challenge } = await registerWithHook(
      'hooked-redirect',
      `https://hooks.example.test:${port}/redirect`,
    );
    expect(app.state).not.toBe('approved');
    expect(challenge?.reason).toContain('a redirect (never followed)');
  });
});
