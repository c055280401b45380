import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { revokeAll, subjectKey } from '../src/broker/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { gatehouseAsync } from './support/cli.js';
import { startDemo, type Demo } from './support/demo.js';
import { expectProblem, json, requestIdOf, type AuditRow } from './support/http.js';

/**
 * Identity and revocation through real HTTP and the real CLI (issue 14, items 1, 2, 6, 7, 10 and the
 * contract's containment refusal): who is cut off stays cut off, on every path, whatever the case of
 * their e-mail; a leaked signing key can be cut off; every grant is audited. Needs `npm run build`.
 */

let demo: Demo;
let store: Store;
const cliTimeout = 180_000;
const cli = (...args: string[]) => gatehouseAsync([...args, '--data-dir', demo.dataDir]);
const scope = 'read:account.basic';

beforeAll(async () => {
  demo = await startDemo({
    config: {
      // A user whose IdP spells the e-mail with capitals (item 2).
      'demoUsers.carl': {
        email: 'Carl.Case@Example.com',
        name: 'Carl Case',
        role: 'sales_rep',
        territory: 'NA',
      },
    },
  });
  store = await openGatehouseStore(demo.config);
});

afterAll(async () => {
  await store?.close();
  await demo?.stop();
});

/** Polls until the gateway answers `status` for this token (changes hold within a second). */
async function gatewayWithin(token: string, status: number, ms = 1500): Promise<Response> {
  const started = Date.now();
  for (;;) {
    const response = await demo.get('/crm/v1/accounts?limit=1', token);
    if (response.status === status || Date.now() - started > ms) return response;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function auditEvents(filter: string): Promise<AuditRow['event'][]> {
  const carol = await demo.accessToken('carol', 'console', 'audit:read');
  const page = await json<{ records: AuditRow[] }>(
    await demo.get(`/audit/v1/events?limit=1000&${filter}`, carol),
  );
  return page.records.map((record) => record.event);
}

describe('offboarding and revocation stop people on every path', () => {
  it(
    'a leaver is refused at the gateway and at the token endpoint, even with a fresh sign-in at the IdP',
    async () => {
      const token = await demo.accessToken('erin', 'call-notes', scope);
      // The access token names the IdP that asserted `sub`: the pair is the user's key.
      expect(decodeJwt(token)).toMatchObject({ sub: 'erin', idp: `${demo.url}/idp` });
      expect((await demo.get('/crm/v1/accounts?limit=1', token)).status).toBe(200);
      const result = await cli('offboard', 'user', 'erin@example.com', '--reason', 'left', '--json');
      expect(result.code, result.stderr).toBe(0);
      // Offboarding by e-mail revokes the (issuer, sub) seen with it, which holds whatever e-mail comes later.
      const { rows } = await sql<{ value: string }>`
        select value from token_revocations where kind = 'user'`.execute(store.db);
      expect(rows.map((row) => row.value)).toContain(subjectKey(`${demo.url}/idp`, 'erin'));
      await expectProblem(await gatewayWithin(token, 401), 401, 'TOKEN_REVOKED');
      // The IdP still signs erin in (as a company IdP may, until it is told): the broker says no.
      const exchange = await demo.exchange('erin', 'call-notes', scope);
      expect(exchange.status).toBe(400);
      expect(await json<{ error: string }>(exchange)).toMatchObject({ error: 'invalid_grant' });
    },
    cliTimeout,
  );

  it(
    'offboarding Carl.Case@Example.com as carl.case@example.com cuts him off: one normalised form everywhere',
    async () => {
      const token = await demo.accessToken('carl', 'call-notes', scope);
      expect((await demo.get('/crm/v1/accounts?limit=1', token)).status).toBe(200);
      const result = await cli('offboard', 'user', 'carl.case@example.com', '--reason', 'left', '--json');
      expect(result.code, result.stderr).toBe(0);
      await expectProblem(await gatewayWithin(token, 401), 401, 'TOKEN_REVOKED');
      expect((await demo.exchange('carl', 'call-notes', scope)).status).toBe(400);
    },
    cliTimeout,
  );

  it('containment: the refused token names the incident (401 TOKEN_REVOKED with incident)', async () => {
    const token = await demo.accessToken('bob', 'pipeline-dashboard', scope);
    expect((await demo.get('/crm/v1/accounts?limit=1', token)).status).toBe(200);
    await revokeAll(store.db, {
      appId: 'pipeline-dashboard',
      userId: 'bob@example.com',
      reason: 'incident inc_test_1: denial_burst (high)',
      incident: 'inc_test_1',
      actor: 'detect',
    });
    const problem = await expectProblem(await gatewayWithin(token, 401), 401, 'TOKEN_REVOKED');
    expect(problem).toMatchObject({ incident: 'inc_test_1' });
    expect(problem.detail).toContain('inc_test_1');
  });

  it('/readyz reports the revocation list', async () => {
    const ready = await json<{ checks: Record<string, { ok: boolean; detail?: string }> }>(
      await demo.get('/readyz'),
    );
    expect(ready.checks.revocations).toMatchObject({ ok: true });
  });
});

describe('gatehouse keys revoke', () => {
  it(
    'takes a leaked key out of JWKS at once, stops its tokens on the running server, and is audited',
    async () => {
      const token = await demo.accessToken('alice', 'call-notes', scope);
      const kid = decodeProtectedHeader(token).kid as string;
      expect((await demo.get('/crm/v1/accounts?limit=1', token)).status).toBe(200);

      // --kid=: a base64url kid may begin with '-', which would read as an option.
      const result = await cli('keys', 'revoke', `--kid=${kid}`, '--reason', 'key material leaked', '--json');
      expect(result.code, result.stderr).toBe(0);
      const answer = JSON.parse(result.stdout) as { kid: string; signing_kid: string };
      expect(answer).toMatchObject({ kid });
      expect(answer.signing_kid).not.toBe(kid);

      await expectProblem(await gatewayWithin(token, 401), 401, 'TOKEN_REVOKED');
      const jwks = await json<{ keys: { kid: string }[] }>(await demo.get('/.well-known/jwks.json'));
      expect(jwks.keys.map((key) => key.kid)).not.toContain(kid);
      // New tokens are signed by the new key and work.
      const fresh = await demo.accessToken('alice', 'call-notes', scope);
      expect(decodeProtectedHeader(fresh).kid).not.toBe(kid);
      expect((await demo.get('/crm/v1/accounts?limit=1', fresh)).status).toBe(200);

      const events = await auditEvents('');
      expect(events.some((e) => e.action === 'key.revoke' && e.resource_id === kid.slice(0, 64))).toBe(true);
    },
    cliTimeout,
  );

  it(
    'needs a reason and a known kid: one clear line, non-zero exit',
    async () => {
      const missing = await cli('keys', 'revoke', 'x'.repeat(43));
      expect(missing.code).not.toBe(0);
      const unknown = await cli('keys', 'revoke', 'x'.repeat(43), '--reason', 'test');
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    },
    cliTimeout,
  );

  it('the admin API revokes too (admin only), and answers the new signer', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', scope);
    const kid = decodeProtectedHeader(alice).kid as string;
    await expectProblem(
      await demo.send('POST', `/admin/v1/keys/${kid}/revoke`, alice, { json: { reason: 'leak' } }),
      403,
      'SCOPE_MISSING',
    );
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const listed = await json<{ records: { kid: string; state: string }[] }>(
      await demo.get('/admin/v1/keys', dave),
    );
    expect(listed.records.find((key) => key.kid === kid)?.state).toBe('signing');
    const revoked = await demo.send('POST', `/admin/v1/keys/${kid}/revoke`, dave, {
      json: { reason: 'leak drill' },
    });
    expect(revoked.status).toBe(200);
    expect(await json<{ kid: string }>(revoked)).toMatchObject({ kid });
    // Every token that key signed stops, on this node and the others.
    await expectProblem(await gatewayWithin(alice, 401), 401, 'TOKEN_REVOKED');
  });
});

describe('policy publish and keys revoke through the admin API with a console-issued token', () => {
  it('a non-admin console token is refused 403 and audited; an admin revokes, audited', async () => {
    // rita signs in at the console (the code flow, user present) and holds `review`, not `admin`.
    const rita = await demo.accessToken('rita', 'console', 'review');
    const dave = await demo.accessToken('dave', 'console', 'admin');
    const kid = decodeProtectedHeader(await demo.accessToken('alice', 'call-notes', scope)).kid as string;
    for (const [path, body, action] of [
      ['/admin/v1/policies/publish', { files: {}, reason: 'republish' }, 'admin.policies'],
      [`/admin/v1/keys/${kid}/revoke`, { reason: 'leak drill' }, 'admin.keys'],
    ] as const) {
      const refused = await demo.send('POST', path, rita, { json: body });
      await expectProblem(refused, 403, 'SCOPE_MISSING');
      const [event] = await auditEvents(`request_id=${requestIdOf(refused)}`);
      expect(event, path).toMatchObject({ actor_id: 'rita@example.com', outcome: 'deny' });
      expect(event?.action, path).toContain(action);
    }
    // An admin's publish through the same API, gated and audited: test/policy.e2e.test.ts.
    const revoked = await demo.send('POST', `/admin/v1/keys/${kid}/revoke`, dave, {
      json: { reason: 'leak drill' },
    });
    expect(revoked.status).toBe(200);
    const events = await auditEvents(`request_id=${requestIdOf(revoked)}`);
    expect(events).toContainEqual(
      expect.objectContaining({
        action: 'key.revoke',
        actor_id: 'dave@example.com',
        outcome: 'allow',
        resource_id: kid,
      }),
    );
  });
});

describe('token issuance is audited', () => {
  it('an issued token and a refused grant each append token.grant, with client, app, subject, scopes and network, never the token', async () => {
    const response = await demo.exchange('alice', 'call-notes', scope);
    const { access_token: token } = await json<{ access_token: string }>(response);
    const refused = await demo.exchange('alice', 'call-notes', 'read:contact.pii');
    expect(refused.status).toBe(400);
    const events = (await auditEvents('app_id=call-notes')).filter((e) => e.action === 'token.grant');
    const jti = decodeJwt(token).jti as string;
    const issued = events.filter((e) => e.outcome === 'allow' && e.actor_id === 'alice@example.com');
    expect(issued.at(-1)).toMatchObject({
      actor_role: 'sales_rep',
      app_id: 'call-notes',
      resource_id: 'token-exchange client:call-notes',
      scope,
      client_network: '127.0.0.0/24',
    });
    expect(events.some((e) => e.outcome === 'deny' && e.reason.startsWith('OAUTH_INVALID_SCOPE'))).toBe(true);
    const text = JSON.stringify(events);
    expect(text).not.toContain(token.split('.')[2]);
    expect(text).not.toContain(jti);
  });

  it('a revocation through /oauth/revoke (RFC 7009) is audited as token.revoke', async () => {
    const token = await demo.accessToken('alice', 'call-notes', scope);
    const response = await fetch(`${demo.url}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'call-notes', token }),
    });
    expect(response.status).toBe(200);
    const events = await auditEvents('app_id=call-notes');
    const jti = decodeJwt(token).jti as string;
    expect(events.some((e) => e.action === 'token.revoke' && e.resource_id === `jti:${jti}`)).toBe(true);
  });
});

describe('/oauth/token rate limit', () => {
  let limited: Demo;

  beforeAll(async () => {
    limited = await startDemo({
      config: {
        'broker.tokenRequestLimits': {
          perClient: { burst: 3, ratePerSecond: 0.05 },
          perNetwork: { burst: 100, ratePerSecond: 1 },
        },
      },
    });
  });

  afterAll(async () => {
    await limited?.stop();
  });

  it('answers 429 with Retry-After per client once the burst is spent, ', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await limited.exchange('alice', 'call-notes', scope)).status).toBe(200);
    }
    const refused = await limited.exchange('alice', 'call-notes', scope);
    // An OAuth endpoint: application/json per RFC 6749 §5.2, the problem's fields beside `error`.
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    const problem = await json<{ error: string; code: string; detail: string }>(refused);
    expect(problem.code).toBe('RATE_LIMITED');
    expect(typeof problem.error).toBe('string');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(problem.detail).toContain('per-client');
    // Another client is not affected by call-notes' budget.
    expect((await limited.exchange('bob', 'pipeline-dashboard', scope)).status).toBe(200);
  });
});
