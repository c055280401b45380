import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import type { IncidentDetail } from '../../detect/index.js';
import { DependencyUnavailable, GatehouseError, IncidentError, InputError } from '../../errors/index.js';
import { demoProfile } from '../../config/index.js';
import { commandConfig, commandSecrets, withCommonOptions, type CommonOptions } from '../context.js';

interface DrillOptions extends CommonOptions {
  url?: string;
  user?: string;
  out?: string;
  keepContained?: boolean;
}

const app = 'call-notes';
const pageSize = 40;
/** Demo users who read contacts through call-notes, in the order the drill prefers them. */
const attackers = ['erin', 'alice', 'bob'];
const tokenExchange = {
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
  subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
};

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * `gatehouse drill mass-export`: a synthetic attack on a running demo, timed. An app pages through
 * contacts for a user; the bulk-export guard refuses it, detection opens an incident and contains the
 * app; the drill measures how long until the attacker's token stops working, exports the evidence
 * bundle and verifies it offline, then (unless --keep-contained) an admin restores the app and closes
 * the incident.
 */
export function registerDrillCommands(program: Command): void {
  const drill = program
    .command('drill')
    .description('incident drills against a running demo (demo mode only)');
  withCommonOptions(
    drill
      .command('mass-export')
      .description(
        'replay an app paging through contacts; print when it was detected, when its tokens stopped working and where the evidence is',
      )
      .option('--url <url>', 'the running demo (default: the URL the data dir was last served at)')
      .option(
        '--user <name>',
        `the demo user the app acts for (default: the first of ${attackers.join(', ')} outside working hours now)`,
      )
      .option(
        '--out <file>',
        'where to write the evidence bundle (default: <data dir>/evidence/<incident>.json)',
      )
      .option('--keep-contained', 'leave the app suspended and the incident open afterwards'),
  ).action(async (options: DrillOptions) => {
    const result = await runDrill(options, (message) => {
      if (!options.json) process.stderr.write(`${message}\n`);
    });
    process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${summary(result)}\n`);
    if (!result.evidence.verified) process.exitCode = 1;
  });
}

interface DrillResult {
  url: string;
  app: string;
  user: string;
  local_time: string;
  working_hours: string;
  off_hours: boolean;
  /** The off-hours rule's threshold, to say why it did or did not fire. */
  off_hours_min_records: number;
  records_read: number;
  /** Milliseconds from the start of the attack, on this machine's clock. */
  guard_refused_ms: number;
  token_refused_ms: number;
  token_refused_status: number;
  token_refused_code: string;
  /** From the refused read to the attacker's first refused request. */
  cut_off_ms: number;
  /** Server side: from the audit event of the refusal (its timestamp) to the incident's detection. */
  detected_after_event_ms: number | null;
  /** Server side: from the refusal's durable append to the rules' detection (the detector's own delay). */
  detected_after_append_ms: number | null;
  /** Server side: from the refusal's timestamp to the last containment action done. */
  contained_after_event_ms: number | null;
  incident: { id: string; rule: string; severity: string; summary: string; containment: string[] };
  other_incidents: Array<{ id: string; rule: string }>;
  new_token_after_containment: { status: number; error: string };
  evidence: {
    file: string;
    events: number;
    checkpoint_size: number;
    verified: boolean;
    verifier_key: string;
  };
  restored: null | { by: string; lifted: string[]; new_token_status: number; new_token_after_ms: number };
}

async function runDrill(options: DrillOptions, progress: (message: string) => void): Promise<DrillResult> {
  // The demo's own working hours and guard floor, as `serve --demo` runs with them.
  const config = commandConfig(options, {}, demoProfile);
  const [
    { readMeta },
    { openGatehouseStore },
    { mintDevIdToken, signInAtDevIdp },
    audit,
    detect,
    { demoApps },
  ] = await Promise.all([
    import('../../store/index.js'),
    import('../../database/index.js'),
    import('../../devidp/index.js'),
    import('../../audit/index.js'),
    import('../../detect/index.js'),
    import('../../catalog/index.js'),
  ]);
  const store = await openGatehouseStore(config);
  let meta: { mode?: string; url?: string; issuer?: string };
  try {
    meta = {
      mode: await readMeta(store.db, 'mode'),
      url: await readMeta(store.db, 'public_url'),
      issuer: await readMeta(store.db, 'idp_issuer'),
    };
  } finally {
    await store.close();
  }
  if (meta.mode !== 'demo' || !meta.issuer) {
    throw new GatehouseError(
      'DEMO_ONLY',
      'drills run only against a demo data dir: start the demo (npm start) or pass --data-dir',
    );
  }
  const url = (options.url ?? meta.url ?? '').replace(/\/$/, '');
  if (!/^https?:\/\//.test(url)) throw new InputError('--url must be the http(s) URL of the running demo');
  await fetch(`${url}/healthz`).catch((cause: unknown) => {
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      `no Gatehouse answers at ${url}: start the demo (npm start) or pass --url`,
      { cause },
    );
  });

  const secrets = commandSecrets(config);
  const issuer = meta.issuer;
  const now = Date.now() / 1000;
  const candidates = options.user ? [options.user] : attackers;
  const assessed = candidates.map((name) => {
    const demoUser = config.demoUsers[name];
    if (!demoUser)
      throw new InputError(`--user must be a demo user: ${Object.keys(config.demoUsers).join(', ')}`);
    const hours = detect.workingHoursOf(config.detect.workingHours, demoUser.email);
    return { name, email: demoUser.email, hours, off: !detect.isWorkingTime(hours, now) };
  });
  const attacker = assessed.find((a) => a.off) ?? assessed[0];
  const hoursText = `${attacker.hours.days.join(',')} ${attacker.hours.start}-${attacker.hours.end} ${attacker.hours.timeZone}`;
  const localTime = detect.describeLocalTime(attacker.hours.timeZone, now);
  progress(`drill mass-export against ${url}: ${app} acting for ${attacker.email}`);
  progress(
    `  ${localTime}: ${attacker.off ? 'outside' : 'inside'} ${attacker.name}'s working hours (${hoursText})` +
      (attacker.off ? '' : '; no demo user is off hours now, so only the volume rules apply'),
  );

  const exchange = async (user: string, clientId: string, scope: string): Promise<Answer> => {
    const subject = await mintDevIdToken({
      config: config as Config,
      secrets,
      user,
      issuer,
      audience: clientId,
    });
    return call(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        ...tokenExchange,
        subject_token: subject,
        client_id: clientId,
        scope,
      }).toString(),
    });
  };
  const tokenOf = async (user: string, clientId: string, scope: string) => {
    const answer = await exchange(user, clientId, scope);
    if (answer.status !== 200 || typeof answer.body.access_token !== 'string') {
      throw new DependencyUnavailable(
        'DEPENDENCY_UNAVAILABLE',
        `no ${clientId} token for ${user}: ${answer.status} ${String(answer.body.error_description ?? answer.body.detail ?? answer.body.error ?? '')} (is ${clientId} suspended by an earlier drill? gatehouse incident list --app ${clientId})`,
      );
    }
    return answer.body.access_token;
  };
  // Platform scopes come only from the console's sign-in (dave at the development IdP), never by exchange.
  const consoleUris = demoApps.find((a) => a.clientId === 'console')?.manifest.redirect_uris;
  const admin = String(
    (
      await signInAtDevIdp({
        base: url,
        clientId: 'console',
        redirectUri: Array.isArray(consoleUris) ? String(consoleUris[0]) : '',
        scope: 'admin',
        user: 'dave',
      })
    ).access_token,
  );
  const asAdmin = (path: string, init: RequestInit = {}) =>
    call(`${url}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${admin}` } });

  // An open incident of the same rule, app and user would take this detection without containing again.
  const open = await asAdmin(`/admin/v1/incidents?app_id=${app}&rule=mass_export&limit=200`);
  const stale = (open.body.records as IncidentDetail[] | undefined)?.find(
    (i) => i.state !== 'closed' && i.actor === attacker.email,
  );
  if (stale) {
    throw new IncidentError(
      'INCIDENT_CONFLICT',
      `incident ${stale.id} of an earlier drill is still ${stale.state}: close it first (gatehouse incident close ${stale.id} --reason "drill over")`,
    );
  }
  const before = await asAdmin('/admin/v1/incidents?limit=1');
  const newestBefore = (before.body.records as IncidentDetail[] | undefined)?.[0]?.id ?? '';

  const token = await tokenOf(attacker.name, app, 'read:contact.basic');
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  progress(`  ${clock(0)}  paging through contacts, ${pageSize} a page`);
  let cursor: string | undefined;
  let records = 0;
  let refused: { at: number; path: string } | undefined;
  for (let page = 1; page <= 100 && !refused; page++) {
    const path = `/crm/v1/contacts?limit=${pageSize}&fields=first_name,last_name${cursor ? `&cursor=${cursor}` : ''}`;
    const answer = await call(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (answer.status === 200) {
      records += (answer.body.records as unknown[]).length;
      cursor = answer.body.next_cursor as string | undefined;
      progress(`  ${clock(elapsed())}  page ${page}: ${records} contacts so far`);
      if (!cursor)
        throw new GatehouseError(
          'INTERNAL',
          'the demo ran out of contacts before anything refused the drill',
        );
    } else if (answer.body.code === 'BULK_EXPORT_BLOCKED') {
      refused = { at: elapsed(), path };
      progress(
        `  ${clock(refused.at)}  page ${page} refused by the bulk-export guard (403 BULK_EXPORT_BLOCKED) after ${records} contacts`,
      );
    } else {
      throw new GatehouseError(
        'INTERNAL',
        `the drill's read was answered ${answer.status} ${String(answer.body.code ?? '')} before the bulk-export guard refused it`,
      );
    }
  }
  if (!refused) throw new GatehouseError('INTERNAL', 'the bulk-export guard never refused the drill');

  // The attacker keeps trying; containment must stop the very token it holds.
  let cut: { at: number; status: number; code: string } | undefined;
  while (!cut && elapsed() - refused.at < 10_000) {
    const answer = await call(`${url}${refused.path}`, { headers: { authorization: `Bearer ${token}` } });
    if (answer.status === 401) cut = { at: elapsed(), status: 401, code: String(answer.body.code ?? '') };
    else await sleep(10);
  }
  if (!cut)
    throw new GatehouseError(
      'INTERNAL',
      "the attacker's token still worked 10 s after the bulk-export guard refused it",
    );
  progress(
    `  ${clock(cut.at)}  the attacker's token is refused: ${cut.status} ${cut.code}, ${cut.at - refused.at} ms after the refused read`,
  );

  const incident = await awaitIncident(asAdmin, newestBefore, attacker.email);
  const others = (await asAdmin('/admin/v1/incidents?limit=50')).body.records as IncidentDetail[];
  const otherIncidents = others
    .filter((i) => i.id > newestBefore && i.id !== incident.id)
    .map((i) => ({ id: i.id, rule: i.rule }));
  const detected = incident.timeline.find((t) => t.kind === 'detected');
  for (const entry of incident.timeline.filter(
    (t) => t.kind === 'contained' || t.kind === 'containment_failed',
  )) {
    progress(`  contained  ${entry.detail}`);
  }

  // Servers read app states through a short cache: a suspension holds for new tokens within a second.
  const suspendedAt = performance.now();
  let retry = await exchange(attacker.name, app, 'read:contact.basic');
  while (retry.status === 200 && performance.now() - suspendedAt < 3000) {
    await sleep(50);
    retry = await exchange(attacker.name, app, 'read:contact.basic');
  }
  const retryError = String(retry.body.error_description ?? retry.body.detail ?? retry.body.error ?? '');
  progress(
    `  a new ${app} token is ${retry.status === 200 ? 'still issued 3 s later' : `refused: ${retry.status} ${retryError}`}`,
  );

  const evidenceAnswer = await asAdmin(`/admin/v1/incidents/${incident.id}/evidence`);
  if (evidenceAnswer.status !== 200) {
    throw new GatehouseError(
      'INTERNAL',
      `the evidence bundle could not be fetched: ${evidenceAnswer.status}`,
    );
  }
  const bundle = evidenceAnswer.body as unknown as import('../../audit/index.js').EvidenceBundle;
  const verifierKey = await audit.auditVerifierKey(secrets, audit.auditOrigin);
  const verified = audit.verifyEvidenceBundle(bundle, verifierKey);
  const file = resolve(options.out ?? join(config.dataDir, 'evidence', `${incident.id}.json`));
  await mkdir(resolve(file, '..'), { recursive: true, mode: 0o700 });
  await writeFile(`${file}.tmp`, `${JSON.stringify(bundle, null, 2)}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  const refusal = bundle.events.find((e) => e.event.action === 'bulk_export');
  const recordedAt = refusal ? Date.parse(refusal.event.timestamp) : Number.NaN;
  const since = (at: string | undefined) =>
    at === undefined || Number.isNaN(recordedAt) ? null : Date.parse(at) - recordedAt;
  const lastContained = incident.timeline.filter((t) => t.kind === 'contained').at(-1);
  const appendDelay = /detected (\d+) ms after its append/.exec(detected?.detail ?? '');

  let restored: DrillResult['restored'] = null;
  if (!options.keepContained) {
    // Revocations cannot be taken back (new sign-ins work again); throttles and suspensions can.
    const reversible = incident.containment.some(
      (c) =>
        c.status === 'applied' && ['throttle_app', 'throttle_app_user', 'suspend_app'].includes(c.action),
    );
    const lifted = reversible
      ? await asAdmin(`/admin/v1/incidents/${incident.id}/restore`, jsonBody({ reason: 'drill over' }))
      : { status: 200, body: { containment: [] } };
    const closed = await asAdmin(
      `/admin/v1/incidents/${incident.id}/close`,
      jsonBody({ reason: 'drill: synthetic attack' }),
    );
    if (lifted.status !== 200 || closed.status !== 200) {
      throw new GatehouseError(
        'INTERNAL',
        `restoring after the drill failed: ${lifted.status} ${String(lifted.body.detail ?? '')} / ${closed.status}`,
      );
    }
    // Servers read app states through a short cache, and a revocation covers tokens issued up to its
    // second: a new token works again within a second or two. Accounts, as the guard still counts contacts.
    const liftedAt = performance.now();
    const works = async (): Promise<number> => {
      const answer = await exchange(attacker.name, app, 'read:account.basic');
      if (answer.status !== 200) return answer.status;
      const read = await call(`${url}/crm/v1/accounts?limit=1&fields=name`, {
        headers: { authorization: `Bearer ${String(answer.body.access_token)}` },
      });
      return read.status;
    };
    let status = await works();
    while (status !== 200 && performance.now() - liftedAt < 5000) {
      await sleep(50);
      status = await works();
    }
    const containment = (lifted.body.containment as Array<{ action: string; status: string }>) ?? [];
    restored = {
      by: 'dave@example.com',
      lifted: containment.filter((c) => c.status === 'reversed').map((c) => c.action),
      new_token_status: status,
      new_token_after_ms: Math.round(performance.now() - liftedAt),
    };
    progress(
      `  restored   ${restored.lifted.join(', ')} lifted by an admin; a new token ${status === 200 ? `reads again after ${restored.new_token_after_ms} ms` : `still fails (${status})`}`,
    );
  }

  return {
    url,
    app,
    user: attacker.email,
    local_time: localTime,
    working_hours: hoursText,
    off_hours: attacker.off,
    off_hours_min_records: config.detect.rules.off_hours_bulk.minRecords,
    records_read: records,
    guard_refused_ms: refused.at,
    token_refused_ms: cut.at,
    token_refused_status: cut.status,
    token_refused_code: cut.code,
    cut_off_ms: cut.at - refused.at,
    detected_after_event_ms: since(detected?.at),
    detected_after_append_ms: appendDelay ? Number(appendDelay[1]) : null,
    contained_after_event_ms: since(lastContained?.at),
    incident: {
      id: incident.id,
      rule: incident.rule,
      severity: incident.severity,
      summary: incident.summary,
      containment: incident.containment.map((c) => `${c.action} ${c.target} ${c.status}`),
    },
    other_incidents: otherIncidents,
    new_token_after_containment: { status: retry.status, error: retryError },
    evidence: {
      file,
      events: bundle.events.length,
      checkpoint_size: Number(bundle.checkpoint.split('\n')[1]),
      verified: verified.ok,
      verifier_key: verifierKey,
    },
    restored,
  };
}

/** The incident this drill opened: the newest mass_export incident for the attacker, polled until it has its containment. */
async function awaitIncident(
  asAdmin: (path: string) => Promise<Answer>,
  newestBefore: string,
  actor: string,
): Promise<IncidentDetail> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const list = await asAdmin(`/admin/v1/incidents?rule=mass_export&limit=20`);
    const found = (list.body.records as IncidentDetail[] | undefined)?.find(
      (i) => i.id > newestBefore && i.actor === actor && i.app_id === app,
    );
    if (found && found.containment.length > 0) {
      const detail = await asAdmin(`/admin/v1/incidents/${found.id}`);
      return detail.body as unknown as IncidentDetail;
    }
    await sleep(50);
  }
  throw new GatehouseError(
    'INTERNAL',
    'no contained mass_export incident appeared within 10 s of the attack',
  );
}

function summary(r: DrillResult): string {
  const lines = [
    `drill mass-export: ${r.app} paged through contacts for ${r.user} (${r.local_time}, ${r.off_hours ? 'outside' : 'inside'} working hours)`,
    `  refused by the bulk-export guard   ${seconds(r.guard_refused_ms)} into the attack, after ${r.records_read} contacts`,
    `  detected                           incident ${r.incident.id}: ${r.incident.rule} (${r.incident.severity}), ${r.detected_after_event_ms ?? '?'} ms after the refusal was recorded (${r.detected_after_append_ms ?? '?'} ms after its audit append)`,
    `                                     ${r.incident.summary}`,
    `  contained                          ${r.incident.containment.join('; ')} (done ${r.contained_after_event_ms ?? '?'} ms after the refusal)`,
    `  tokens stopped working             ${seconds(r.token_refused_ms)} (${r.token_refused_status} ${r.token_refused_code}), ${r.cut_off_ms} ms after the refused read`,
    `  new token for ${r.app}`.padEnd(37) +
      `${r.new_token_after_containment.status === 200 ? 'still issued' : `refused (${r.new_token_after_containment.status} ${r.new_token_after_containment.error})`}`,
  ];
  if (r.off_hours && !r.other_incidents.some((i) => i.rule === 'off_hours_bulk')) {
    lines.push(
      `  off hours                          yes, but the off-hours rule needs ${r.off_hours_min_records} records and the guard stopped the app at ${r.records_read}`,
    );
  }
  if (r.other_incidents.length > 0) {
    lines.push(
      `  also opened                        ${r.other_incidents.map((i) => `${i.id} (${i.rule})`).join(', ')}`,
    );
  }
  lines.push(
    `  evidence bundle                    ${r.evidence.file}`,
    `                                     ${r.evidence.events} audit events, inclusion proofs against checkpoint ${r.evidence.checkpoint_size}: ${r.evidence.verified ? 'verified offline' : 'DID NOT VERIFY'}`,
    `                                     (gatehouse incident verify ${r.evidence.file})`,
  );
  lines.push(
    r.restored
      ? `  restored                           ${r.restored.by} lifted ${r.restored.lifted.join(', ') || 'nothing'} and closed the incident; a new token reads ${r.restored.new_token_status === 200 ? `again ${r.restored.new_token_after_ms} ms later` : `nothing (${r.restored.new_token_status})`}`
      : `  left contained                     gatehouse incident restore ${r.incident.id} --as you@example.com`,
  );
  return lines.join('\n');
}

async function call(target: string, init: RequestInit): Promise<Answer> {
  const response = await fetch(target, init);
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { detail: text.slice(0, 200) };
  }
  return { status: response.status, body };
}

const jsonBody = (value: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clock = (ms: number) => `+${(ms / 1000).toFixed(3)}s`;
const seconds = (ms: number) => `+${(ms / 1000).toFixed(3)} s`;
