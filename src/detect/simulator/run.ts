/**
 * Plays a scenario against a real Gatehouse over HTTP and records what every request got: on a
 * simulated clock the server shares (embedded), step by step as fast as the server answers, each step
 * at its simulated time and detection settled before the next, so a seed gives the same run every
 * time; or in compressed real time (`speed` simulated seconds per second) against a running server.
 * App tokens come from the IdP the broker trusts through the token exchange (`acquireToken`), as any
 * microapp's backend would get them; platform scopes and refresh tokens only from a browser sign-in
 * (`target.signIn`).
 */
import { performance } from 'node:perf_hooks';
import type { SimulatedClock } from '../clock.js';
import type { IncidentDetail } from '../incidents.js';
import { contactScopes, type AttackKind, type Scenario, type SimApp, type Step } from './scenario.js';

export interface SimulationTarget {
  /** The Gatehouse base URL (no trailing slash). */
  readonly url: string;
  /** An ID token for `user` issued to the app's IdP client `audience` (the dev IdP in demo mode). */
  idToken(user: string, audience: string): Promise<string>;
  /**
   * A browser sign-in of `user` at `clientId` (authorization code + PKCE at the IdP): the token
   * response, refresh token included.
   */
  signIn(user: string, clientId: string, scope: string): Promise<Record<string, unknown>>;
}

export interface RunOptions {
  /** Simulated seconds per wall-clock second (real time only). */
  readonly speed: number;
  /**
   * The server's clock, when it runs on a simulated one: the run moves it to each step's time (and by
   * `msPerRequest` per request) instead of waiting, and plays the steps one at a time.
   */
  readonly clock?: SimulatedClock;
  /** Resolves once the server's detection has handled every event so far (with `clock`). */
  readonly settle?: () => Promise<void>;
  /** Simulated ms each request takes (with `clock`); default 200. */
  readonly msPerRequest?: number;
  /** Requests in flight at most. */
  readonly concurrency?: number;
  /** How long to wait after the last step for detection to finish, in ms (default 2000). */
  readonly settleMs?: number;
  readonly progress?: (line: string) => void;
}

/** One request the simulator made and what it got; never a token or a record value. */
export interface RequestRecord {
  /** Ms since the run started on the run's clock (simulated ms on a simulated clock). */
  readonly t: number;
  /** Simulated ms of the step it belongs to. */
  readonly sim: number;
  readonly user: string;
  readonly app: string;
  readonly attack?: AttackKind;
  readonly status: number;
  readonly code?: string;
  readonly records: number;
  /** The incident a 401/429 named, if any. */
  readonly incident?: string;
}

export interface RunResult {
  /** On the run's clock (the simulated one, when the server runs on it). */
  readonly startedAt: number;
  readonly endedAt: number;
  /** Whether times are simulated (the server's clock) or real. */
  readonly clock: 'simulated' | 'real';
  /** Simulated ms per ms of the run's clock: 1 on a simulated clock, `speed` in real time. */
  readonly timeScale: number;
  /** Wall-clock ms the run took. */
  readonly wallMs: number;
  readonly requests: readonly RequestRecord[];
  readonly incidents: readonly IncidentDetail[];
  /** Distinct records each attack got (a page read again adds nothing): what left the CRM. */
  readonly distinctRead: Readonly<Partial<Record<AttackKind, number>>>;
}

const tokenExchange = {
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
  subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
};

const scopesOf: Record<string, string> = {
  'call-notes': contactScopes,
  'field-notes': contactScopes,
  'lead-sync': contactScopes,
  'pipeline-dashboard': 'read:opportunity.aggregate',
  console: 'audit:read',
};

/**
 * The address a synthetic user calls from, sent as X-Forwarded-For (a Gatehouse that trusts the
 * simulator as its proxy, as the embedded one does, sees each user on their own /24): people from
 * their office networks, the stuffing script from TEST-NET-3. A server that does not trust it sees
 * everyone on the simulator's own network.
 */
export function addressOf(user: string): string {
  if (user === 'anonymous') return '203.0.113.66';
  let h = 0x811c9dc5;
  for (const c of user) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return `10.${(h >>> 8) & 255}.${h & 255}.20`;
}

const from = (user: string) => ({ 'x-forwarded-for': addressOf(user) });

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: response.status, body };
}

/**
 * The one place the simulator gets an access token: the IdP's ID token exchanged at /oauth/token for
 * the app's client. When the broker's token exchange changes, only this function follows it.
 */
export async function acquireToken(
  target: SimulationTarget,
  user: string,
  clientId: string,
  scope: string,
): Promise<Answer> {
  return call(`${target.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(user) },
    body: new URLSearchParams({
      ...tokenExchange,
      subject_token: await target.idToken(user, clientId),
      client_id: clientId,
      scope,
    }).toString(),
  });
}

/**
 * Registers (as an admin) and approves (as a reviewer) an app the scenario needs, or finds the one an
 * earlier run registered; answers its client id.
 */
async function registerApp(
  target: SimulationTarget,
  app: SimApp,
  admin: string,
  reviewer: string,
): Promise<string> {
  const manifest = {
    name: app.id,
    owner: 'dave@example.com',
    purpose: `simulated ${app.id}: call notes on my accounts`,
    scopes: app.scopes,
    data_classes: ['internal', 'pii'],
    retention_days: 30,
    expected_users: app.expectedUsers,
    expected_reads: app.expectedReads,
    // As call-notes: contacts are processed only for sales outreach they consented to.
    consent_purpose: 'sales_outreach',
    telemetry: true,
    redirect_uris: ['http://localhost:5199/callback'],
  };
  const asAdmin = { 'content-type': 'application/json', authorization: `Bearer ${admin}` };
  let registered = await call(`${target.url}/admin/v1/apps`, {
    method: 'POST',
    headers: asAdmin,
    body: JSON.stringify({ manifest }),
  });
  if (registered.status === 409)
    registered = await call(`${target.url}/admin/v1/apps/${app.id}`, { headers: asAdmin });
  if (registered.status !== 201 && registered.status !== 200) {
    throw new Error(
      `registering ${app.id} was answered ${registered.status} ${String(registered.body.code ?? '')}`,
    );
  }
  const clientId = String(registered.body.client_id);
  if (registered.body.state === 'approved') return clientId;
  const approved = await call(`${target.url}/admin/v1/apps/${app.id}/approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${reviewer}` },
    body: JSON.stringify({ reason: 'simulated day' }),
  });
  if (approved.status !== 200) {
    throw new Error(
      `approving ${app.id} was answered ${approved.status} ${String(approved.body.code ?? '')}`,
    );
  }
  return clientId;
}

export async function runScenario(
  scenario: Scenario,
  target: SimulationTarget,
  options: RunOptions,
): Promise<RunResult> {
  const progress = options.progress ?? (() => undefined);
  const consoleToken = async (user: string, scope: string) => {
    const answer = await target.signIn(user, 'console', scope);
    if (typeof answer.access_token !== 'string') throw new Error(`no console token for ${user}`);
    return answer.access_token;
  };
  const admin = await consoleToken('dave', 'admin');
  const reviewer = await consoleToken('rita', 'review');
  const clientIds = new Map<string, string>();
  for (const app of scenario.apps) clientIds.set(app.id, await registerApp(target, app, admin, reviewer));
  progress(`registered ${scenario.apps.map((a) => a.id).join(', ') || 'no extra apps'}`);

  const requests: RequestRecord[] = [];
  const readBy = new Map<AttackKind, Set<string>>();
  const tokens = new Map<string, string>();
  const cursors = new Map<string, string | null>();
  const simulated = options.clock;
  const now = () => simulated?.now() ?? Date.now();
  const wallStart = performance.now();
  const startedAt = now();
  const wall = () => now() - startedAt;
  /**
   * On the simulated clock, whatever an answer set off is detected and contained before the next
   * request: a run does not depend on how fast detection is on this machine.
   */
  const settled = async (answer: Promise<Answer>): Promise<Answer> => {
    const got = await answer;
    if (simulated) await options.settle?.();
    return got;
  };
  const record = (step: Step, answer: Answer, records = 0) => {
    const incident = typeof answer.body.incident === 'string' ? answer.body.incident : undefined;
    const t = wall();
    // A request takes time on the simulated clock too: pages of one step are not one instant.
    simulated?.advance(options.msPerRequest ?? 200);
    requests.push({
      t,
      sim: step.at,
      user: step.user,
      app: step.app,
      ...(step.attack && { attack: step.attack }),
      status: answer.status,
      ...(typeof answer.body.code === 'string' && { code: answer.body.code }),
      records,
      ...(incident && { incident }),
    });
  };

  /** The user's token for the app (slot), got once; a refused exchange is recorded as the step's answer. */
  const tokenFor = async (step: Step): Promise<string | undefined> => {
    const key = `${step.user}|${step.app}|${step.token}`;
    const held = tokens.get(key);
    if (held) return held;
    const clientId = clientIds.get(step.app) ?? step.app;
    const scope = scopesOf[step.app] ?? contactScopes;
    // The console's platform scopes come only from its sign-in, never by exchange.
    const answer =
      step.app === 'console'
        ? { status: 200, body: await target.signIn(step.user, clientId, scope) }
        : await settled(acquireToken(target, step.user, clientId, scope));
    if (typeof answer.body.access_token !== 'string') {
      record(step, {
        status: answer.status,
        body: { code: String(answer.body.error ?? answer.body.code ?? '') },
      });
      return undefined;
    }
    tokens.set(key, answer.body.access_token);
    return answer.body.access_token;
  };

  const get = async (step: Step, token: string, path: string) =>
    settled(
      call(`${target.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...from(step.user) } }),
    );

  const refreshAt = (step: Step, who: string, refreshToken: unknown) =>
    settled(
      call(`${target.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(who) },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: clientIds.get(step.app) ?? step.app,
          refresh_token: String(refreshToken),
        }).toString(),
      }),
    );
  /**
   * The owner signs in through the browser and their app refreshes once; a thief holding a copy of
   * the first refresh token replays it from elsewhere. The broker sees the reuse and revokes the
   * sign-in; the owner's fresh access token stops working.
   */
  const replayStolenRefresh = async (step: Step) => {
    const signedIn = await target.signIn(step.user, clientIds.get(step.app) ?? step.app, contactScopes);
    record(step, { status: typeof signedIn.refresh_token === 'string' ? 200 : 400, body: {} });
    if (typeof signedIn.refresh_token !== 'string') return;
    const refreshed = await refreshAt(step, step.user, signedIn.refresh_token);
    record(step, refreshed);
    const replayed = await refreshAt(step, `${step.user} thief`, signedIn.refresh_token);
    record(step, { status: replayed.status, body: { code: String(replayed.body.error ?? '') } });
    if (typeof refreshed.body.access_token === 'string') {
      record(step, await get(step, refreshed.body.access_token, '/crm/v1/accounts?limit=5'));
    }
  };

  const play = async (step: Step): Promise<void> => {
    if (step.kind === 'bad_exchange') {
      const forged = await settled(
        call(`${target.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...from(step.user) },
          body: new URLSearchParams({
            ...tokenExchange,
            subject_token: forgedIdToken(step.at),
            client_id: step.app,
            scope: contactScopes,
          }).toString(),
        }),
      );
      record(step, forged);
      return;
    }
    if (step.kind === 'stolen_refresh') {
      await replayStolenRefresh(step);
      return;
    }
    const token = await tokenFor(step);
    if (!token) return;
    if (step.kind === 'pipeline') {
      for (let i = 0; i < step.pages; i++) {
        record(
          step,
          await get(step, token, '/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)'),
        );
      }
      return;
    }
    if (step.kind === 'audit') {
      const answer = await get(step, token, `/audit/v1/events?limit=${step.pageSize}`);
      record(step, answer, Array.isArray(answer.body.records) ? answer.body.records.length : 0);
      return;
    }
    const object = step.kind === 'accounts' ? 'accounts' : 'contacts';
    // Attackers go on where they stopped; people re-read their own accounts' first pages.
    const cursorKey = `${step.user}|${step.app}|${step.token}|${object}`;
    const resumes = step.attack !== undefined && step.attack !== 'off_hours_bulk';
    let cursor = resumes ? (cursors.get(cursorKey) ?? null) : null;
    for (let page = 0; page < step.pages; page++) {
      const answer = await get(
        step,
        token,
        `/crm/v1/${object}?limit=${step.pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      const got: unknown[] = Array.isArray(answer.body.records) ? answer.body.records : [];
      record(step, answer, answer.status === 200 ? got.length : 0);
      if (step.attack && answer.status === 200) {
        const seen = readBy.get(step.attack) ?? new Set<string>();
        for (const r of got) seen.add(`${object}:${String((r as { id?: unknown }).id)}`);
        readBy.set(step.attack, seen);
      }
      if (answer.status !== 200) return;
      cursor = typeof answer.body.next_cursor === 'string' ? answer.body.next_cursor : null;
      cursors.set(cursorKey, cursor);
      if (cursor === null) return;
    }
  };

  const limit = options.concurrency ?? 16;
  let running = 0;
  const waiting: Array<() => void> = [];
  const slot = async () => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
  };
  const release = () => {
    running -= 1;
    waiting.shift()?.();
  };
  const inFlight: Array<Promise<void>> = [];
  const failed = (step: Step) => (error: unknown) => {
    record(step, { status: 0, body: { code: error instanceof Error ? error.message : String(error) } });
  };
  let reported = 0;
  for (const [i, step] of scenario.steps.entries()) {
    if (simulated) {
      // One step at a time, and whatever it set off contained before the next: the same every run.
      simulated.set(startedAt + step.at);
      await play(step).catch(failed(step));
      await options.settle?.();
    } else {
      const due = step.at / options.speed - wall();
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      await slot();
      inFlight.push(play(step).catch(failed(step)).finally(release));
    }
    const done = Math.floor(((i + 1) * 10) / scenario.steps.length);
    if (done > reported) {
      reported = done;
      progress(`${done * 10}% of ${scenario.steps.length} steps, ${requests.length} requests so far`);
    }
  }
  await Promise.all(inFlight);
  if (simulated) await options.settle?.();
  else await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 2000));
  const endedAt = now();
  const wallMs = performance.now() - wallStart;

  const list = await call(`${target.url}/admin/v1/incidents?limit=200`, {
    headers: { authorization: `Bearer ${admin}` },
  });
  const summaries = (list.body.records as Array<{ id: string; opened_at: string }> | undefined) ?? [];
  const incidents: IncidentDetail[] = [];
  for (const { id, opened_at: opened } of summaries) {
    if (Date.parse(opened) < startedAt) continue;
    const detail = await call(`${target.url}/admin/v1/incidents/${id}`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    if (detail.status === 200) incidents.push(detail.body as unknown as IncidentDetail);
  }
  progress(`${requests.length} requests, ${incidents.length} incidents`);
  const distinctRead = Object.fromEntries([...readBy].map(([kind, seen]) => [kind, seen.size]));
  return {
    startedAt,
    endedAt,
    clock: simulated ? 'simulated' : 'real',
    timeScale: simulated ? 1 : options.speed,
    wallMs,
    requests,
    incidents,
    distinctRead,
  };
}

/** A token that looks like an ID token and is not one (what a stuffing script sends). */
function forgedIdToken(n: number): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ sub: `user${n}`, iss: 'https://idp.example' })}.${'A'.repeat(86)}`;
}
