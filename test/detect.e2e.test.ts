import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditOrigin,
  auditVerifierKey,
  verifyEvidenceBundle,
  type EvidenceBundle,
} from '../src/audit/index.js';
import { simulatedClock, webhookSignature } from '../src/detect/index.js';
import { redeemCodeFlow } from './support/broker.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, type Page } from './support/http.js';

interface Incident {
  id: string;
  rule: string;
  actor: string;
  app_id: string;
  severity: string;
  state: string;
  summary: string;
  containment: Array<{ action: string; target: string; status: string; reversed_by?: string }>;
  timeline: Array<{ at: string; kind: string; by: string; detail: string }>;
  evidence: number[];
  opened_at?: string;
}

const secret = 'webhook-secret-for-the-e2e-test';
const alerts: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
const receiver = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
  request.on('end', () => {
    alerts.push({ headers: request.headers, body });
    response.end();
  });
});

let demo: Demo;
let dave: string;
let carol: string;
/** The token the attacking app held: revoked by containment, and revoked it stays. */
let attacker: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 10 ms until it answers something, for at most `ms`. */
async function within<T>(ms: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined || performance.now() > deadline) return value;
    await sleep(10);
  }
}

async function incidents(query: string): Promise<Incident[]> {
  const response = await demo.get(`/admin/v1/incidents?${query}`, dave);
  expect(response.status).toBe(200);
  return (await json<{ records: Incident[] }>(response)).records;
}

async function incident(id: string): Promise<Incident> {
  return json<Incident>(await demo.get(`/admin/v1/incidents/${id}`, dave));
}

const post = (path: string, token: string, body: unknown = {}) =>
  demo.send('POST', path, token, { json: body });

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  demo = await startDemo({
    config: {
      'detect.enabled': true,
      // Every budget capped at 50 records, so the app's own budget (checked first) is what refuses the
      // export below: an app-wide anomaly, contained app-wide. A user's budget is contained at the user.
      'limits.bulkExport': { maxTracked: 50 },
      // Every caller here is 127.0.0.1: the attacks' refused grants would add up to credential stuffing
      // from that one network and throttle every later test's sign-in (that rule has its own tests).
      'detect.rules.credential_stuffing.maxPerNetwork': 10_000,
      // The alert receiver listens on loopback, which the guarded egress refuses unless allow-listed.
      'net.allowPrivateDestinations': ['127.0.0.1/32'],
      'detect.alerts.webhook': {
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`,
        secret,
        minSeverity: 'low',
        backoffMs: 20,
        // The receiver stands for a SIEM in the US: alerts leave the EU only under a named mechanism.
        region: 'US',
      },
      'compliance.residency.forwardTo': [{ region: 'US', mechanism: 'SCC 2021/914 module 1' }],
    },
  });
  dave = await demo.accessToken('dave', 'console', 'admin');
  carol = await demo.accessToken('carol', 'console', 'audit:read');
});

afterAll(async () => {
  await demo?.stop();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

describe('an app paging through contacts', () => {
  let bystander: string;
  let refusedAt: number;
  let firstPage: Page;
  let opened: Incident;

  it('is refused by the guard, detected, and its token refused (401) within a second of the refusal', async () => {
    attacker = await demo.accessToken('erin', 'call-notes', 'read:contact.basic');
    bystander = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const page1 = await demo.get('/crm/v1/contacts?limit=40&fields=first_name,last_name', attacker);
    expect(page1.status).toBe(200);
    firstPage = await json<Page>(page1);
    const next = `/crm/v1/contacts?limit=40&fields=first_name,last_name&cursor=${firstPage.next_cursor}`;
    await expectProblem(await demo.get(next, attacker), 403, 'BULK_EXPORT_BLOCKED');
    refusedAt = performance.now();

    const cut = await within(1000, async () => {
      const answer = await demo.get(next, attacker);
      return answer.status === 401 ? answer : undefined;
    });
    expect(cut, "the attacker's token still worked a second after the refusal").toBeDefined();
    await expectProblem(cut as Response, 401, 'TOKEN_REVOKED');
    // Every token of the app, not only the attacker's.
    await expectProblem(await demo.get('/crm/v1/accounts?limit=1', bystander), 401, 'TOKEN_REVOKED');
    expect(performance.now() - refusedAt).toBeLessThan(2000);
  });

  it('opened one incident: rule, actor, app, severity, containment, timeline, evidence', async () => {
    const found = await incidents('rule=mass_export&app_id=call-notes');
    expect(found).toHaveLength(1);
    // The revocation takes effect before the incident records it: wait for the record, not the lever.
    opened =
      (await within(2000, async () => {
        const current = await incident(found[0].id);
        // The timeline's entries are written after the containment records.
        const recorded = current.timeline.filter((t) => t.kind === 'contained').length;
        return current.containment.length >= 2 && recorded >= 2 ? current : undefined;
      })) ?? (await incident(found[0].id));
    expect(opened).toMatchObject({
      rule: 'mass_export',
      actor: 'erin@example.com',
      app_id: 'call-notes',
      severity: 'high',
      state: 'open',
    });
    expect(opened.containment.map((c) => [c.action, c.target, c.status])).toEqual([
      ['revoke_app_tokens', 'app:call-notes', 'applied'],
      ['suspend_app', 'app:call-notes', 'applied'],
    ]);
    // Detected first, then contained twice; the attack's later refusals may be detected in between.
    const kinds = opened.timeline.map((t) => t.kind);
    expect(kinds[0]).toBe('detected');
    expect(kinds.filter((kind) => kind !== 'detected').slice(0, 2)).toEqual(['contained', 'contained']);
    expect(opened.evidence.length).toBeGreaterThanOrEqual(2);
  });

  it('suspended the app: a new token is refused within a second', async () => {
    const refused = await within(1500, async () => {
      const answer = await demo.exchange('erin', 'call-notes', 'read:contact.basic');
      return answer.status === 200 ? undefined : answer;
    });
    expect(refused?.status).toBe(401);
  });

  it('sent a signed alert that names the incident and holds no record values or tokens', async () => {
    const alert = await within(3000, async () => alerts.find((a) => a.body.includes(opened.id)));
    expect(alert).toBeDefined();
    const delivered = await within(3000, async () =>
      (await incident(opened.id)).timeline.find((t) => t.kind === 'alerted'),
    );
    expect(delivered?.detail).toMatch(/^webhook http:\/\/127\.0\.0\.1:\d+$/);
    // The sink is in another region: the alert left as an audited transfer, under its mechanism.
    const [forwarded] = await auditEventsOf(demo, carol, `${opened.id}.forward`);
    expect(forwarded?.event).toMatchObject({
      action: 'alert.forward',
      transfer: 'EU>US',
      reason: expect.stringContaining('SCC 2021/914 module 1'),
    });
    const { headers, body } = alert!;
    expect(headers['x-gatehouse-signature']).toBe(
      webhookSignature(secret, headers['x-gatehouse-timestamp'] as string, body),
    );
    expect(JSON.parse(body)).toMatchObject({
      incident_id: opened.id,
      rule: 'mass_export',
      app_id: 'call-notes',
    });
    for (const record of firstPage.records) {
      expect(body).not.toContain(String(record.last_name));
      expect(body).not.toContain(String(record.id));
    }
    expect(body).not.toContain(attacker.slice(0, 40));
  });

  it('exports an evidence bundle that verifies offline with the audit key, and fails when tampered', async () => {
    const response = await demo.get(`/admin/v1/incidents/${opened.id}/evidence`, carol);
    expect(response.status).toBe(200);
    const bundle = await json<EvidenceBundle>(response);
    const key = await auditVerifierKey(demo.secrets, auditOrigin);
    expect(verifyEvidenceBundle(bundle, key)).toMatchObject({ ok: true, events: opened.evidence.length });
    expect(bundle.events.map((e) => e.index)).toEqual(opened.evidence);
    const refusal = bundle.events.find((e) => e.event.action === 'bulk_export');
    expect(refusal?.event).toMatchObject({
      actor_id: 'erin@example.com',
      app_id: 'call-notes',
      outcome: 'deny',
    });

    const tampered = JSON.parse(JSON.stringify(bundle)) as EvidenceBundle & {
      events: Array<{ event: Record<string, unknown> }>;
    };
    tampered.events[0].event.actor_id = 'someone-else@example.com';
    expect(verifyEvidenceBundle(tampered, key)).toMatchObject({ ok: false, code: 'LEAF_HASH_MISMATCH' });
  });

  it('recorded containment in the audit trail under the incident id', async () => {
    const response = await demo.get(`/audit/v1/events?request_id=${opened.id}`, carol);
    const events = (await json<{ records: Array<{ event: Record<string, string> }> }>(response)).records;
    expect(events.map((r) => [r.event.action, r.event.actor_id, r.event.resource_id])).toEqual([
      ['detect.contain', 'detect', 'app:call-notes'],
      ['detect.contain', 'detect', 'app:call-notes'],
    ]);
  });
});

describe('detection metrics', () => {
  it('publishes what the detector saw and did on /metrics, rule failures included', async () => {
    const text = await (await demo.get('/metrics', dave)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('gatehouse_detect_events')).toBeGreaterThan(0);
    expect(value('gatehouse_detect_incidents_opened')).toBeGreaterThanOrEqual(1);
    expect(value('gatehouse_detect_rule_errors')).toBe(0);
    expect(value('gatehouse_detect_watching')).toBe(1);
  });
});

describe('the incident API', () => {
  it('lets auditors read but only admins change; without a token, 401', async () => {
    const [open] = await incidents('state=open&rule=mass_export');
    expect((await demo.get('/admin/v1/incidents', carol)).status).toBe(200);
    await expectProblem(
      await post(`/admin/v1/incidents/${open.id}/acknowledge`, carol),
      403,
      'SCOPE_MISSING',
    );
    await expectProblem(await demo.get('/admin/v1/incidents'), 401, 'TOKEN_MISSING');
    await expectProblem(
      await demo.get('/admin/v1/incidents/inc_nonexistent000000000', dave),
      404,
      'INCIDENT_NOT_FOUND',
    );
    await expectProblem(await demo.get('/admin/v1/incidents?state=perhaps', dave), 422, 'INVALID_INPUT');
  });

  it('an admin restores the contained app: new tokens again, the revoked ones stay revoked', async () => {
    const [open] = await incidents('state=open&rule=mass_export');
    const response = await post(`/admin/v1/incidents/${open.id}/restore`, dave, {
      reason: 'the maker fixed a paging bug',
    });
    expect(response.status).toBe(200);
    const restored = await json<Incident>(response);
    expect(restored.containment.map((c) => [c.action, c.status, c.reversed_by ?? ''])).toEqual([
      ['revoke_app_tokens', 'applied', ''],
      ['suspend_app', 'reversed', 'dave@example.com'],
    ]);
    expect(restored.timeline.filter((t) => t.kind !== 'detected').at(-1)).toMatchObject({
      kind: 'restored',
      by: 'dave@example.com',
    });
    // A revocation covers tokens issued up to its second: a token that works again may take until the next one.
    const working = await within(2500, async () => {
      const answer = await demo.exchange('erin', 'call-notes', 'read:account.basic');
      if (answer.status !== 200) return undefined;
      const fresh = ((await answer.json()) as { access_token: string }).access_token;
      const read = await demo.get('/crm/v1/accounts?limit=1', fresh);
      return read.status === 200 ? read : undefined;
    });
    expect(working, 'no working call-notes token within 2.5 s of the restore').toBeDefined();
    await expectProblem(await demo.get('/crm/v1/accounts?limit=1', attacker), 401, 'TOKEN_REVOKED');
    await expectProblem(await post(`/admin/v1/incidents/${open.id}/restore`, dave), 409, 'INCIDENT_CONFLICT');

    const events = await json<{ records: Array<{ event: Record<string, string> }> }>(
      await demo.get(`/audit/v1/events?request_id=${open.id}`, carol),
    );
    expect(events.records.map((r) => [r.event.action, r.event.actor_id])).toEqual([
      ['detect.contain', 'detect'],
      ['detect.contain', 'detect'],
      ['detect.restore', 'dave@example.com'],
      ['incident.restore', 'dave@example.com'],
    ]);
  });

  it('acknowledge, annotate and close, each once; the notes stay out of the audit trail', async () => {
    const [open] = await incidents('state=open&rule=mass_export');
    const path = `/admin/v1/incidents/${open.id}`;
    expect((await post(`${path}/acknowledge`, dave, { note: 'looking' })).status).toBe(200);
    await expectProblem(await post(`${path}/acknowledge`, dave), 409, 'INCIDENT_CONFLICT');
    expect((await post(`${path}/annotate`, dave, { note: 'maker says: a loop without a stop' })).status).toBe(
      200,
    );
    await expectProblem(await post(`${path}/annotate`, dave, {}), 422, 'INVALID_INPUT');
    await expectProblem(await post(`${path}/close`, dave, {}), 422, 'INVALID_INPUT');
    const closed = await json<Incident>(
      await post(`${path}/close`, dave, { reason: 'bug fixed, app restored' }),
    );
    expect(closed.state).toBe('closed');
    // The attack's last refusals may still be detected meanwhile: the admin's steps are what is checked.
    const steps = closed.timeline.map((t) => t.kind).filter((kind) => kind !== 'detected');
    expect(steps.slice(-4)).toEqual(['restored', 'acknowledged', 'annotated', 'closed']);
    await expectProblem(await post(`${path}/close`, dave, { reason: 'again' }), 409, 'INCIDENT_CONFLICT');

    const trail = JSON.stringify(
      await json<unknown>(await demo.get(`/audit/v1/events?request_id=${open.id}`, carol)),
    );
    expect(trail).toContain('incident.close');
    expect(trail).not.toContain('a loop without a stop');
    expect(trail).not.toContain('bug fixed');
  });
});

describe('a refresh token replayed through the real broker', () => {
  it("opens a refresh_token_reuse incident and revokes the user's tokens in every app within a second", async () => {
    const redirectUri = 'http://localhost:5173/callback';
    const tokens = (await (
      await redeemCodeFlow({ base: demo.url, redirectUri, scope: 'read:account.basic', user: 'bob' })
    ).json()) as { access_token: string; refresh_token: string };
    const elsewhere = await demo.accessToken('bob', 'pipeline-dashboard', 'read:opportunity.aggregate');
    const refresh = (token: string) =>
      fetch(`${demo.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: 'call-notes',
          refresh_token: token,
        }),
      });
    expect((await refresh(tokens.refresh_token)).status).toBe(200);
    expect((await refresh(tokens.refresh_token)).status).toBe(400);
    const replayedAt = performance.now();

    const cut = await within(1000, async () => {
      const answer = await demo.get(
        '/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)',
        elsewhere,
      );
      return answer.status === 401 ? answer : undefined;
    });
    expect(cut, "bob's token in another app still worked a second after the replay").toBeDefined();
    expect(performance.now() - replayedAt).toBeLessThan(2000);
    const [reuse] = await incidents('rule=refresh_token_reuse');
    expect(reuse).toMatchObject({ actor: 'bob@example.com', app_id: 'call-notes', severity: 'high' });
    expect((await incident(reuse.id)).containment.map((c) => [c.action, c.target])).toEqual([
      ['revoke_user_tokens', 'user:bob@example.com'],
    ]);
  });
});

describe('probing for fields outside the scopes', () => {
  it('is a denial burst: that user in that app is throttled (429 naming the incident), not the other users, until an admin lifts it', async () => {
    const prober = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const colleague = await demo.accessToken('erin', 'call-notes', 'read:account.basic');
    const probe = '/crm/v1/accounts?limit=1&fields=name,annual_revenue';
    // The prober keeps going; the 20th denial in a minute is the burst, the throttle follows it.
    const statuses: number[] = [];
    let limited: Response | undefined;
    while (!limited && statuses.length < 200) {
      const answer = await demo.get(probe, prober);
      statuses.push(answer.status);
      if (answer.status === 429) limited = answer;
      else await answer.body?.cancel();
    }
    expect(statuses.slice(0, 20)).toEqual(new Array(20).fill(403));
    expect(limited, 'alice was never throttled').toBeDefined();
    const problem = await expectProblem(limited as Response, 429, 'RATE_LIMITED');

    const [burst] = await incidents('rule=denial_burst');
    expect(burst).toMatchObject({ actor: 'alice@example.com', app_id: 'call-notes' });
    expect(problem).toMatchObject({ limit: 'throttle', incident: burst.id });
    expect(burst.containment.map((c) => [c.action, c.target, c.status])).toEqual([
      ['throttle_app_user', 'app:call-notes user:alice@example.com', 'applied'],
    ]);
    // Before: the whole app was throttled, so erin got 429 because of alice.
    for (let i = 0; i < 5; i++)
      expect((await demo.get('/crm/v1/accounts?limit=1', colleague)).status).toBe(200);

    expect((await post(`/admin/v1/incidents/${burst.id}/restore`, dave, { reason: 'a tester' })).status).toBe(
      200,
    );
    await sleep(1100);
    expect((await demo.get('/crm/v1/accounts?limit=1', prober)).status).toBe(200);
  });
});

describe('a heavy reader with a learned baseline (on a simulated clock)', () => {
  // Detection, the limits and the gateway's events run on this clock: ten working days in seconds.
  const start = Date.UTC(2026, 10, 2); // Monday 2 November 2026, 00:00 UTC
  const clock = simulatedClock(start);
  const weekdays = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11];
  let heavy: Demo;
  let admin: string;

  afterAll(async () => {
    await heavy?.stop();
  });

  /** `records` of alice's contacts re-read in pages within nine minutes from 10:00 UTC of `day`. */
  async function readsOn(day: number, records: number, token: string, page: number): Promise<number[]> {
    clock.set(start + day * 86_400_000 + 10 * 3_600_000);
    const statuses: number[] = [];
    const reads = Math.ceil(records / page);
    for (let i = 0; i < reads; i++) {
      clock.advance(Math.floor(540_000 / reads));
      const answer = await heavy.get(`/crm/v1/contacts?limit=${page}&fields=first_name`, token);
      statuses.push(answer.status);
      await answer.body?.cancel();
    }
    return statuses;
  }

  it('learns her usual volume, keeps it across a restart, lets a usual heavy hour through and contains a jump from it', async () => {
    const config = {
      'detect.enabled': true,
      'detect.rules.credential_stuffing.maxPerNetwork': 10_000,
      // Nothing but mass_export's volume is under test here.
      'detect.rules.new_network.enabled': false,
      'detect.rules.sensitive_first_access.enabled': false,
    };
    heavy = await startDemo({ config, keepDataDir: true, start: { clock } });
    const dataDir = heavy.dataDir;
    let token = await heavy.accessToken('alice', 'call-notes', 'read:contact.basic');
    const first = await json<Page>(await heavy.get('/crm/v1/contacts?limit=50&fields=first_name', token));
    const page = first.records.length;
    expect(page).toBeGreaterThanOrEqual(20);
    // Eight working days of 1,800 records between 10:00 and 10:09: under the static 2,000 in ten
    // minutes while she is in warm-up, and learned as her usual active hour.
    for (const day of weekdays.slice(0, 8)) {
      expect(new Set(await readsOn(day, 1800, token, page))).toEqual(new Set([200]));
    }
    await heavy.stop();
    heavy = await startDemo({ config, dataDir, start: { clock } });
    admin = await heavy.accessToken('dave', 'console', 'admin');
    token = await heavy.accessToken('alice', 'call-notes', 'read:contact.basic');

    // 2,500 in ten minutes: above the static threshold, within 3 × her baseline of 1,800.
    expect(new Set(await readsOn(weekdays[8], 2500, token, page))).toEqual(new Set([200]));
    // 6,000 is a jump from it: her tokens are revoked (the next request is refused), well after the
    // volume of her usual hour.
    const jump = await readsOn(weekdays[9], 6000, token, page);
    const cutAt = jump.indexOf(401);
    expect(cutAt, "alice's token still worked after the jump").toBeGreaterThan(0);
    expect(cutAt * page).toBeGreaterThan(2500);
    await expectProblem(await heavy.get('/crm/v1/contacts?limit=1', token), 401, 'TOKEN_REVOKED');

    const response = await heavy.get('/admin/v1/incidents?rule=mass_export', admin);
    const found = (await json<{ records: Incident[] }>(response)).records;
    // One incident, for the jump (detection sees events in order: the usual hour raised none).
    expect(found.map((i) => [i.actor, i.app_id])).toEqual([['alice@example.com', 'call-notes']]);
    expect(found[0].summary).toMatch(
      /user alice@example.com read \d+ records in 600s \(threshold \d+: 3 × a baseline of \d+ records per active hour\)/,
    );
    // Opened on the simulated clock, on the day of the jump.
    expect(Date.parse(found[0].opened_at ?? '')).toBeGreaterThanOrEqual(start + weekdays[9] * 86_400_000);
  }, 120_000);
});
