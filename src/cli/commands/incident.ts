import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { withWitnessOptions, witnessPolicy, type WitnessOptions } from './audit.js';
import type { Containment, Incident, IncidentDesk, IncidentDetail } from '../../detect/index.js';
import { IncidentError, InputError } from '../../errors/index.js';
import {
  commandConfig,
  report,
  withCommonOptions,
  withModules,
  withSecrets,
  type CommonOptions,
} from '../context.js';
import { callAdmin, currentLogin, localOperator } from '../login.js';
import { withCatalog, type CatalogSession } from './app.js';

interface ListOptions extends CommonOptions {
  state?: string;
  rule?: string;
  app?: string;
  limit?: string;
}

interface ChangeOptions extends CommonOptions {
  note?: string;
  reason?: string;
}

/**
 * The CLI's containment: the catalog's suspension and the broker's revocation work on the data dir and
 * hold on running servers within a second; a throttle lives only in a running server's memory.
 */
async function cliContainment(session: CatalogSession): Promise<Containment> {
  const { containmentLevers } = await import('../../catalog/index.js');
  const serverOnly = () => {
    throw new IncidentError(
      'INCIDENT_CONFLICT',
      'a throttle lives in the running server: lift it with POST /admin/v1/incidents/ID/restore, or let it lapse',
    );
  };
  return {
    throttleApp: async () => serverOnly(),
    unthrottleApp: async () => serverOnly(),
    throttleNetwork: async () => serverOnly(),
    unthrottleNetwork: async () => serverOnly(),
    async revokeTokens(target, { reason }) {
      await session.revokeTokens(target, { reason, actor: localOperator.id });
    },
    ...containmentLevers(session.lifecycle),
  };
}

/** The incident desk over the data dir, for commands that change incidents or read the audit log. */
async function withDesk<T>(options: CommonOptions, work: (desk: IncidentDesk) => Promise<T>): Promise<T> {
  const detect = await import('../../detect/index.js');
  return withCatalog(options, async (session) => {
    const playbook = detect.loadPlaybook(
      detect.playbookFileFor(session.config.dataDir, session.config.detect.playbook),
    );
    const desk = detect.createIncidentDesk({
      db: session.store.db,
      audit: session.audit,
      containment: await cliContainment(session),
      throttle: playbook.throttle,
    });
    return work(desk);
  });
}

/** Reads without writing anything (no audit log is opened, so no checkpoint is signed). */
async function withReader<T>(
  options: CommonOptions,
  work: (desk: Pick<IncidentDesk, 'list' | 'get'>) => Promise<T>,
): Promise<T> {
  const { listIncidents, findIncident } = await import('../../detect/index.js');
  return withModules(options, ({ store }) =>
    work({ list: (q) => listIncidents(store.db, q), get: (id) => findIncident(store.db, id) }),
  );
}

function line(incident: Incident): string {
  const contained = incident.containment
    .map((c) => `${c.action}${c.status === 'applied' ? '' : ` (${c.status})`}`)
    .join(', ');
  return [
    incident.id,
    incident.state.padEnd(12),
    incident.severity.padEnd(8),
    incident.rule.padEnd(22),
    incident.app_id.padEnd(20),
    incident.actor.padEnd(24),
    incident.opened_at,
    `${incident.detections} detection${incident.detections === 1 ? '' : 's'}`,
    contained ? `contained: ${contained}` : '',
  ]
    .join('  ')
    .trimEnd();
}

function detail(incident: IncidentDetail): string {
  return [
    `${incident.id}  ${incident.rule}  ${incident.severity}  ${incident.state}`,
    `  app ${incident.app_id}, actor ${incident.actor}; opened ${incident.opened_at}, updated ${incident.updated_at}${incident.closed_at ? `, closed ${incident.closed_at}` : ''}`,
    `  ${incident.summary}`,
    `  ${incident.detections} detection(s); evidence: ${incident.evidence.length} audit events (${incident.evidence.slice(0, 10).join(', ')}${incident.evidence.length > 10 ? ', ...' : ''})`,
    `  containment: ${incident.containment.length === 0 ? 'none' : incident.containment.map((c) => `${c.action} ${c.target} ${c.status}${c.reversed_by ? ` by ${c.reversed_by}` : ''}`).join('; ')}`,
    `  playbook ${incident.playbook_version}`,
    '  timeline:',
    ...incident.timeline.map((t) => `    ${t.at}  ${t.kind.padEnd(18)} ${t.by.padEnd(20)} ${t.detail}`),
  ].join('\n');
}

export function registerIncidentCommands(program: Command): void {
  const incident = program
    .command('incident')
    .description(
      'incidents raised by detection: list, show, acknowledge, annotate, close, restore, export evidence',
    );

  withCommonOptions(
    incident
      .command('list')
      .description('incidents, newest first')
      .option('--state <state>', 'open, acknowledged or closed')
      .option('--rule <rule>', 'only this detection rule')
      .option('--app <id>', 'only this app')
      .option('--limit <n>', 'at most this many (1-200)', '50'),
  ).action(async (options: ListOptions) => {
    const limit = Number(options.limit);
    if (!Number.isSafeInteger(limit)) throw new InputError('--limit must be a whole number');
    const page = await withReader(options, (desk) =>
      desk.list({
        state: options.state as IncidentDetail['state'] | undefined,
        rule: options.rule,
        app_id: options.app,
        limit,
      }),
    );
    const human = page.records.length === 0 ? 'no incidents' : page.records.map(line).join('\n');
    report(options, human, { records: page.records, next_cursor: page.next_cursor ?? null });
  });

  withCommonOptions(
    incident.command('show').description('one incident, its timeline and its evidence').argument('<id>'),
  ).action(async (id: string, options: CommonOptions) => {
    const found = await withReader(options, (desk) => desk.get(id));
    report(options, detail(found), found);
  });

  withCommonOptions(
    incident
      .command('ack')
      .description('acknowledge an incident: someone is on it')
      .argument('<id>')
      .option('--note <text>', 'what you are doing about it'),
  ).action(async (id: string, options: ChangeOptions) => {
    const { by, found } = await changeIncident(options, id, 'acknowledge', { note: options.note }, (desk) =>
      desk.acknowledge(id, localOperator.id, options.note),
    );
    report(options, `${id} acknowledged by ${by}`, found);
  });

  withCommonOptions(
    incident
      .command('annotate')
      .description("add a note to an incident's timeline")
      .argument('<id>')
      .requiredOption('--note <text>', 'the note'),
  ).action(async (id: string, options: ChangeOptions) => {
    const { found } = await changeIncident(options, id, 'annotate', { note: options.note }, (desk) =>
      desk.annotate(id, localOperator.id, options.note ?? ''),
    );
    report(options, `note added to ${id}`, found);
  });

  withCommonOptions(
    incident
      .command('close')
      .description('close an incident')
      .argument('<id>')
      .requiredOption('--reason <text>', 'what was found and done'),
  ).action(async (id: string, options: ChangeOptions) => {
    const { by, found } = await changeIncident(options, id, 'close', { reason: options.reason }, (desk) =>
      desk.close(id, localOperator.id, options.reason ?? ''),
    );
    report(options, `${id} closed by ${by}`, found);
  });

  withCommonOptions(
    incident
      .command('restore')
      .description(
        "reverse an incident's containment: lift the app's suspension (revoked tokens stay revoked)",
      )
      .argument('<id>')
      .option('--reason <text>', 'why the app may run again'),
  ).action(async (id: string, options: ChangeOptions) => {
    const login = await currentLogin(options);
    if (login !== undefined) {
      const found = await callAdmin(login, 'POST', `/admin/v1/incidents/${encodeURIComponent(id)}/restore`, {
        reason: options.reason,
      });
      report(options, `${id}: containment lifted by ${login.user}`, found);
      return;
    }
    const result = await withDesk(options, (desk) =>
      desk.restore(id, localOperator.id, options.reason ?? ''),
    );
    report(
      options,
      `${id}: ${result.reversed.map((r) => `${r.action} ${r.target}`).join(', ')} lifted by ${localOperator.id}`,
      result,
    );
  });

  withCommonOptions(
    incident
      .command('evidence')
      .description(
        "export an incident's audit events with inclusion proofs against one signed checkpoint, verifiable offline",
      )
      .argument('<id>')
      .requiredOption('--out <file>', 'where to write the bundle (JSON)'),
  ).action(async (id: string, options: CommonOptions & { out: string }) => {
    const bundle = await withDesk(options, (desk) => desk.evidence(id));
    // Written beside the target and renamed into place: a reader never sees half a bundle.
    const temporary = `${options.out}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(bundle, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, options.out);
    const size = bundle.checkpoint.split('\n')[1];
    report(
      options,
      `wrote ${options.out}: ${bundle.events.length} audit events with inclusion proofs against checkpoint ${size}; check it with: gatehouse incident verify ${options.out}`,
      {
        file: options.out,
        events: bundle.events.length,
        checkpoint_size: Number(size),
        verifier_key: bundle.verifier_key,
      },
    );
  });

  withWitnessOptions(
    withCommonOptions(
      incident
        .command('verify')
        .description(
          'verify an evidence bundle offline: checkpoint signature and witness quorum, leaf hashes, inclusion proofs',
        )
        .argument('<file>')
        .option('--public-key <key>', "the audit log's verifier key (default: this data dir's)"),
    ),
  ).action(async (file: string, options: WitnessOptions & { publicKey?: string }) => {
    const audit = await import('../../audit/index.js');
    let key = options.publicKey;
    if (!key) {
      key = await withSecrets(commandConfig(options), (secrets) =>
        audit.auditVerifierKey(secrets, audit.auditOrigin),
      );
    }
    let bundle: unknown;
    try {
      bundle = JSON.parse(await readFile(file, 'utf8'));
    } catch (cause) {
      throw new InputError(
        `${file} cannot be read as JSON: ${(cause as NodeJS.ErrnoException).code ?? 'not JSON'}`,
      );
    }
    const result = audit.verifyEvidenceBundle(bundle, key, witnessPolicy(options, commandConfig(options)));
    if (!result.ok) {
      report(options, `evidence bundle NOT verified: ${result.problem} [${result.code}]`, result);
      process.exitCode = 1;
      return;
    }
    report(
      options,
      `evidence bundle verified: ${result.events} events (${result.indexes.join(', ')}) included in the signed tree of ${result.size}`,
      result,
    );
  });
}

/**
 * An incident change as the logged-in user through the admin API, else locally as the unverified
 * operator; answers who acted and the incident.
 */
async function changeIncident(
  options: ChangeOptions,
  id: string,
  step: 'acknowledge' | 'annotate' | 'close',
  body: Record<string, string | undefined>,
  local: (desk: IncidentDesk) => Promise<unknown>,
): Promise<{ by: string; found: unknown }> {
  const login = await currentLogin(options);
  if (login === undefined) return { by: localOperator.id, found: await withDesk(options, local) };
  const found = await callAdmin(login, 'POST', `/admin/v1/incidents/${encodeURIComponent(id)}/${step}`, body);
  return { by: login.user, found };
}
