import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerNotice } from '../src/devidp/index.js';
import { requestLine } from '../src/server/http.js';
import { createLogger, runtimeWarning } from '../src/server/log.js';
import { gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';

/** The JSON lines the server wrote, parsed. */
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
    done();
  },
});

let demo: Demo;
beforeAll(async () => {
  demo = await startDemo({ start: { logger: createLogger('info', sink, 'json') } });
});
afterAll(async () => demo?.stop());

/** Waits for the log line of a request (written when the answer has gone). */
async function lineOf(requestId: string): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 100; i++) {
    const found = lines.filter((line) => line.reqId === requestId);
    if (found.length) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return [];
}

describe('server log', () => {
  it('writes one JSON line per request with method, path, status, app, user and ms, never the token', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const response = await demo.get('/crm/v1/contacts?limit=2&filter=last_name%20eq%20%27Rowe%27', token);
    expect(response.status).toBe(200);
    const found = await lineOf(response.headers.get('x-request-id') as string);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: 30, method: 'GET', path: '/crm/v1/contacts', status: 200 });
    expect(found[0]?.app).toBe('call-notes');
    expect(String(found[0]?.user)).toContain('alice');
    expect(typeof found[0]?.ms).toBe('number');
    expect(JSON.stringify(lines)).not.toContain(token);
    expect(JSON.stringify(lines)).not.toContain('Rowe');
  });

  it('says in one warning line that a revoked token was refused and what to do', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const revoked = await gatehouseAsync([
      'token',
      'revoke',
      '--app',
      'call-notes',
      '--reason',
      'log test',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(revoked.code, revoked.stderr).toBe(0);
    let response = await demo.get('/crm/v1/contacts?limit=1', token);
    for (let i = 0; i < 40 && response.status !== 401; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      response = await demo.get('/crm/v1/contacts?limit=1', token);
    }
    expect(response.status).toBe(401);
    const found = await lineOf(response.headers.get('x-request-id') as string);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: 40, status: 401, code: 'TOKEN_REVOKED', reason: 'revoked' });
    expect(String(found[0]?.msg)).toMatch(/token .*incident/);
  });

  it('the demo IdP start-up warnings become one line saying what they mean', () => {
    const notice = providerNotice([
      'oidc-provider WARNING: Unsupported runtime. Use Node.js v22.x LTS, or a later LTS release.',
      'oidc-provider WARNING: a quick start development-only in-memory adapter is used',
      'oidc-provider WARNING: a quick start development-only feature devInteractions is enabled',
    ]);
    expect(notice.split('\n')).toHaveLength(1);
    expect(notice).toMatch(/^development IdP \(demo only\): sessions live in memory, .*company IdP/);
  });
});

describe('log lines (pure)', () => {
  it('a containment refusal names the incident and the command that shows it', () => {
    const line = requestLine({
      method: 'GET',
      path: '/crm/v1/contacts',
      status: 401,
      ms: 3.4,
      app: 'call-notes',
      user: 'alice',
      refusal: { code: 'TOKEN_REVOKED', incident: 'inc_123' },
    });
    expect(line.level).toBe('warn');
    expect(line.message).toBe(
      'GET /crm/v1/contacts 401 3ms app=call-notes user=alice TOKEN_REVOKED - token contained by incident inc_123: see npx gatehouse incident show inc_123',
    );
  });

  it("a suspended app's refused token says so, not that the token was revoked", () => {
    const line = requestLine({
      method: 'GET',
      path: '/crm/v1/contacts',
      status: 401,
      ms: 1,
      app: 'call-notes',
      refusal: { code: 'TOKEN_REVOKED', reason: 'app_not_approved' },
    });
    expect(line.fields.reason).toBe('app_not_approved');
    expect(line.message).toBe(
      'GET /crm/v1/contacts 401 1ms app=call-notes TOKEN_REVOKED - token refused: the app is suspended, retired or due for review: see npx gatehouse app show call-notes',
    );
  });

  it('warns once on an end-of-life runtime, not on Node 22 or 24', () => {
    expect(runtimeWarning('v20.19.0')).toMatch(
      /^Node\.js 20 reached end of life in April 2026: run Gatehouse on Node\.js 24 LTS/,
    );
    expect(runtimeWarning('v24.11.0')).toBeUndefined();
    expect(runtimeWarning('v22.1.0')).toBeUndefined();
  });
});
