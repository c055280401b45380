import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { AuditLog } from '../../audit/index.js';
import type {
  Actor,
  App,
  AppQuery,
  BundleScan,
  Lifecycle,
  NoticeResult,
  Registration,
  ScopeSuggestion,
} from '../../catalog/index.js';
import type { Config } from '../../config/index.js';
import type { CrmConnector } from '../../crm/index.js';
import type { Egress } from '../../egress/index.js';
import type { PolicySet } from '../../policy/index.js';
import { CatalogError, GatehouseError, InputError, NotFound } from '../../errors/index.js';
import type { SecretStore } from '../../secrets/index.js';
import type { Store } from '../../store/index.js';
import { callAdmin, currentLogin, localOperator } from '../login.js';
import { commandConfig, progressBar, report, withCommonOptions, type CommonOptions } from '../context.js';

/** What a catalog command works with: the data dir's store, audit log, secrets and lifecycle. */
export interface CatalogSession {
  config: Config;
  store: Store;
  audit: AuditLog;
  secrets: SecretStore;
  lifecycle: Lifecycle;
  /** Outbound calls to configured hooks, refused at connect time unless the address is permitted. */
  egress: Egress;
  revokeTokens(
    target: { appId?: string; userId?: string },
    options: { reason: string; actor: string; permanent?: boolean },
  ): Promise<unknown>;
  /** The CRM the deployment is configured for (connected on first use), as the server reads it. */
  crm(): Promise<CrmConnector>;
}

/**
 * Opens the data dir as the server does (store, audit log, secrets, the active policy library) and
 * closes it after `work`, signing a final checkpoint. Changes hold on running servers within a second:
 * they read app states and revocations from the same store.
 */
export async function withCatalog<T>(
  options: CommonOptions,
  work: (session: CatalogSession) => Promise<T>,
): Promise<T> {
  const config = commandConfig(options);
  const [broker, catalog, control, crm, egressModule, policyLibrary, server] = await Promise.all([
    import('../../broker/index.js'),
    import('../../catalog/index.js'),
    import('../../control/index.js'),
    import('../../crm/index.js'),
    import('../../egress/index.js'),
    import('../../policy-library/index.js'),
    import('../../server/index.js'),
  ]);
  const modules = await server.openGatehouseModules(config, { role: 'cli' });
  try {
    const { store, secrets } = modules;
    const log = await modules.audit();
    const egress = egressModule.createEgress({
      allowPrivateDestinations: config.net.allowPrivateDestinations,
    });
    try {
      // Loading and validating the Cedar library takes a second or more: only registrations need it.
      let policies: Promise<PolicySet> | undefined;
      const connector = async () => (await modules.crm()).connector;
      const revokeTokens: CatalogSession['revokeTokens'] = (target, how) =>
        broker.revokeAll(store.db, { ...target, ...how, audit: log });
      const lifecycle = catalog.createLifecycle({
        db: store.db,
        config,
        egress,
        policies: () =>
          (policies ??= control
            .openPolicyVersions(store.db, config.dataDir)
            .then((versions) => policyLibrary.loadActivePolicySet(versions))),
        audit: log,
        revokeTokens,
        tableSizes: async () => {
          const source = await connector();
          return Object.fromEntries(
            await Promise.all(crm.crmObjects.map(async (o) => [o, await source.count(o)] as const)),
          );
        },
      });
      return await work({
        config,
        store,
        audit: log,
        secrets,
        lifecycle,
        egress,
        revokeTokens,
        crm: connector,
      });
    } finally {
      await egress.close();
    }
  } finally {
    await modules.close();
  }
}

interface ActingOptions extends CommonOptions {
  as?: string;
}

/**
 * Who registers or updates a plan from the CLI: a stated --as is only a label, recorded as unverified;
 * otherwise the OS account. Decisions never take it (see `gatehouse login`).
 */
export function actorOf(options: ActingOptions): Actor {
  if (options.as !== undefined) {
    if (!/^[^\s@]{1,64}@[^\s@]{1,190}$/.test(options.as))
      throw new InputError('--as must be an e-mail address');
    return { id: options.as.toLowerCase(), role: 'unverified' };
  }
  return { id: `os:${userInfo().username}`, role: 'unverified' };
}

const asOption = ['--as <email>', 'who registers, recorded in the audit trail as unverified'] as const;

/** Exit codes of register and update, as for `policy check`: 0 approved, 3 in review, 1 denied. */
const planExit = { approve: 0, review: 3, deny: 1 } as const;

interface PlanOptions extends ActingOptions {
  bundle?: string;
}

interface ListOptions extends CommonOptions {
  owner?: string;
  state?: string;
  class?: string;
  risk?: string;
  unused?: string;
  needsReview?: boolean;
  format?: string;
  notify?: boolean;
}

export function registerAppCommands(program: Command): void {
  const app = program
    .command('app')
    .description('the app catalog: register, list, review, suspend and retire microapps');

  withCommonOptions(
    app
      .command('register')
      .description(
        'register an app from its manifest: exit 0 approved, 3 in review, 1 denied (kept as a draft)',
      )
      .argument('<file>', 'the manifest (JSON or YAML)')
      .option(
        '--bundle <path>',
        "the app's bundle (folder, .zip, .tgz): Gatehouse scans it and binds the result to its digest",
      )
      .option(...asOption),
  ).action(async (file: string, options: PlanOptions) => {
    const manifest = await readManifest(file);
    const bundle = await bundleOf(options.bundle);
    await withCatalog(options, async ({ lifecycle }) => {
      const result = await lifecycle.register({ manifest, bundle, by: actorOf(options), admin: true });
      await printPlan(options, result);
    });
  });

  withCommonOptions(
    app
      .command('update')
      .description(
        'submit a new plan for an app: applied at once when approved or only narrower, else it waits for review while the approved plan stays in force',
      )
      .argument('<id>', 'app id')
      .argument('<file>', 'the new manifest (JSON or YAML)')
      .option('--bundle <path>', "the app's bundle: Gatehouse scans it and binds the result to its digest")
      .option(...asOption),
  ).action(async (id: string, file: string, options: PlanOptions) => {
    const manifest = await readManifest(file);
    const bundle = await bundleOf(options.bundle);
    await withCatalog(options, async ({ lifecycle }) => {
      const result = await lifecycle.update(id, { manifest, bundle, by: actorOf(options), admin: true });
      await printPlan(options, result);
    });
  });

  withCommonOptions(
    app
      .command('list')
      .description(
        'the inventory, filtered; --unused 30d flags apps without CRM requests and --notify tells their owners',
      )
      .option('--owner <email>', "the owner's email")
      .option('--state <state>', 'draft, in_review, approved, suspended or retired')
      .option('--class <class>', 'apps whose plan touches this data class (pii, financial, ...)')
      .option('--risk <level>', 'low (under 25), medium (25-49) or high (50 and more)')
      .option('--unused <days>', 'apps without an allowed CRM request for this long, e.g. 30d')
      .option('--needs-review', 'apps a reviewer must look at (in review, or a plan change pending)')
      .option('--format <format>', 'table, csv or json', 'table')
      .option('--notify', "with --unused: notify each approved app's owner through catalog.webhook"),
  ).action(async (options: ListOptions) => {
    const format = options.json ? 'json' : (options.format ?? 'table');
    if (!['table', 'csv', 'json'].includes(format))
      throw new InputError('--format must be table, csv or json');
    if (options.notify && options.unused === undefined) throw new InputError('--notify needs --unused');
    const { inventoryCsv, notifyUnused, parseDays, refreshUsage, viewOf } =
      await import('../../catalog/index.js');
    const query = listQuery(options, parseDays);
    await withCatalog(options, async ({ config, store, audit, lifecycle, egress }) => {
      await lifecycle.expireApprovals();
      if (query.unusedDays !== undefined) {
        const bar = progressBar('reading the audit trail for last use');
        await refreshUsage(store.db, audit, (read) => bar.update(read, read));
        bar.stop();
      }
      const apps: App[] = [];
      let cursor: string | undefined;
      do {
        const page = await lifecycle.catalog.queryApps({ ...query, cursor, limit: 500 });
        apps.push(...page.records);
        cursor = page.next_cursor;
      } while (cursor !== undefined);
      let notices: NoticeResult[] | undefined;
      if (options.notify && query.unusedDays !== undefined) {
        const webhook = config.catalog.webhook;
        if (!webhook)
          throw new InputError('--notify needs catalog.webhook (url and secret) in the configuration');
        notices = await notifyUnused(
          { db: store.db, audit, webhook, egress, actor: actorOf(options).id },
          apps.filter((a) => a.status === 'approved'),
          query.unusedDays,
        );
      }
      if (format === 'csv') {
        process.stdout.write(inventoryCsv(apps));
      } else if (format === 'json') {
        report({ json: true }, '', { records: apps.map((a) => viewOf(a)), ...(notices ? { notices } : {}) });
      } else {
        const lines = apps.map(
          (a) =>
            `${a.id.padEnd(22)} ${a.status.padEnd(10)} ${a.owner.padEnd(22)} risk ${String(a.riskScore ?? '-').padStart(3)}  ` +
            `${a.dataClasses.join(',').padEnd(24)} last used ${a.lastUsedAt?.slice(0, 10) ?? 'never'}`,
        );
        if (query.unusedDays !== undefined && apps.length > 0) {
          lines.unshift(`${apps.length} apps without an allowed CRM request for ${query.unusedDays} days:`);
        }
        for (const notice of notices ?? []) {
          lines.push(
            `${notice.outcome.padEnd(16)} ${notice.app_id} (${notice.owner})` +
              (notice.problem ? `: the webhook ${notice.problem} after ${notice.attempts} attempts` : ''),
          );
        }
        report({}, lines.join('\n') || 'no apps match', null);
      }
      if (notices?.some((n) => n.outcome === 'failed')) process.exitCode = 1;
    });
  });

  withCommonOptions(
    app
      .command('show')
      .description('one app: plan, state, approval, constraints, history')
      .argument('<id>', 'app id'),
  ).action(async (id: string, options: CommonOptions) => {
    const { viewOf } = await import('../../catalog/index.js');
    await withCatalog(options, async ({ lifecycle }) => {
      const found = await mustFind(lifecycle, id);
      const view = viewOf(found, await lifecycle.catalog.history(found.id));
      report(options, describeApp(found, view.history ?? []), view);
    });
  });

  withCommonOptions(
    app
      .command('deploy-check')
      .description(
        'the deploy gate: exit 0 only when the bundle is, digest for digest, the one approved for the app',
      )
      .argument('<id>', 'app id')
      .requiredOption('--bundle <path>', 'the bundle about to be deployed (folder, .zip, .tgz)'),
  ).action(async (id: string, options: CommonOptions & { bundle: string }) => {
    const { bundleDigest } = await import('../../catalog/index.js');
    const digest = await bundleDigest(options.bundle);
    await withCatalog(options, async ({ lifecycle }) => {
      const approved = await lifecycle.checkDeploy(id, digest);
      report(options, `${approved.id}: ${digest} is the approved bundle; deploy may go ahead`, {
        app_id: approved.id,
        digest,
        approved: true,
      });
    });
  });

  const decisions = [
    ['approve', 'approve an app in review, or its pending plan change (never one you own or registered)'],
    ['deny', 'deny an app in review (back to draft), or its pending plan change (the approved plan stays)'],
    ['suspend', 'suspend an app: every token of it stops within a second'],
    ['restore', 'restore a suspended app to the state it was suspended from'],
  ] as const;
  for (const [step, description] of decisions) {
    withCommonOptions(
      app
        .command(step)
        .description(description)
        .argument('<id>', 'app id')
        .requiredOption('--reason <text>', 'why; recorded in the audit trail'),
    ).action(async (id: string, options: CommonOptions & { reason: string }) => {
      const login = await currentLogin(options);
      if (login !== undefined) {
        const changed = await callAdmin(login, 'POST', `/admin/v1/apps/${encodeURIComponent(id)}/${step}`, {
          reason: options.reason,
        });
        report(options, `${String(changed.id)} is ${String(changed.state)}${viewTail(changed)}`, changed);
        return;
      }
      if (step === 'approve' || step === 'deny') throw unverifiedDecision(step);
      await withCatalog(options, async ({ lifecycle }) => {
        const run = {
          approve: lifecycle.approve,
          deny: lifecycle.deny,
          suspend: lifecycle.suspendApp,
          restore: lifecycle.restoreApp,
        }[step];
        const changed = await run(id, { by: localOperator, reason: options.reason });
        const { viewOf } = await import('../../catalog/index.js');
        report(options, `${changed.id} is ${changed.status}${tail(changed)}`, viewOf(changed));
      });
    });
  }

  withCommonOptions(
    app
      .command('retire')
      .description('retire an app for good: revoke its tokens, remove its secrets, archive its audit events')
      .argument('<id>', 'app id')
      .requiredOption('--reason <text>', 'why; recorded in the audit trail'),
  ).action(async (id: string, options: CommonOptions & { reason: string }) => {
    const login = await currentLogin(options);
    if (login !== undefined) {
      const result = await callAdmin(login, 'POST', `/admin/v1/apps/${encodeURIComponent(id)}/retire`, {
        reason: options.reason,
      });
      report(options, `${String(result.id)} is retired; every token of it is revoked`, result);
      return;
    }
    const { retireApp, viewOf } = await import('../../catalog/index.js');
    await withCatalog(options, async ({ config, audit, secrets, lifecycle }) => {
      const result = await retireApp({ lifecycle, log: audit, secrets, dataDir: config.dataDir }, id, {
        by: localOperator,
        reason: options.reason,
      });
      report(
        options,
        [
          `${result.app.id} is retired; every token of it is revoked`,
          `secrets removed: ${result.secrets_removed.length}`,
          `archive: ${result.archive.file} (${result.archive.events} events, checkpoint of ${result.archive.checkpoint_size})`,
        ].join('\n'),
        { ...viewOf(result.app), secrets_removed: result.secrets_removed, archive: result.archive },
      );
    });
  });

  withCommonOptions(
    app
      .command('suggest-scopes')
      .description(
        "the narrowest scopes and fields the app's audit history shows it used, and what it could drop",
      )
      .argument('<id>', 'app id')
      .option('--since <when>', 'look back this far: 30d, 12h or an ISO 8601 time', '30d'),
  ).action(async (id: string, options: CommonOptions & { since: string }) => {
    const { appEvents, parseSince, suggestScopes } = await import('../../catalog/index.js');
    const since = parseSince(options.since, new Date());
    await withCatalog(options, async ({ config, audit, lifecycle }) => {
      const found = await mustFind(lifecycle, id);
      const events = [];
      for await (const event of appEvents(audit, found.id, since)) events.push(event);
      const suggestion = suggestScopes(found, events, config.scopes, since);
      report(options, describeSuggestion(suggestion, options.since), suggestion);
    });
  });
}

async function mustFind(lifecycle: Lifecycle, id: string): Promise<App> {
  const found = await lifecycle.catalog.findApp(id);
  if (!found) throw new NotFound(`no app ${id}; see gatehouse app list`);
  return found;
}

async function readManifest(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new InputError(`cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`);
  }
  try {
    return text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new InputError(`${file} is not JSON or YAML: ${(cause as Error).message.split('\n')[0]}`);
  }
}

async function bundleOf(path: string | undefined): Promise<BundleScan | undefined> {
  if (path === undefined) return undefined;
  const { scanBundleAt } = await import('../../catalog/index.js');
  return scanBundleAt(path);
}

function listQuery(options: ListOptions, parseDays: (text: string) => number): AppQuery {
  const query: AppQuery = {};
  if (options.owner) query.owner = options.owner;
  if (options.state) {
    if (!['draft', 'in_review', 'approved', 'suspended', 'retired'].includes(options.state)) {
      throw new InputError('--state must be draft, in_review, approved, suspended or retired');
    }
    query.state = options.state as AppQuery['state'];
  }
  if (options.class) query.dataClass = options.class;
  if (options.risk) {
    if (!['low', 'medium', 'high'].includes(options.risk))
      throw new InputError('--risk must be low, medium or high');
    query.risk = options.risk as AppQuery['risk'];
  }
  if (options.unused !== undefined) query.unusedDays = parseDays(options.unused);
  if (options.needsReview) query.needsReview = true;
  return query;
}

async function printPlan(options: CommonOptions, result: Registration): Promise<void> {
  const { viewOf } = await import('../../catalog/index.js');
  const { app, admission } = result;
  const lines = [
    `${app.status.padEnd(9)} ${app.id}  (client id ${app.clientId}; policy version ${admission.policy_version}, risk ${admission.risk_score}, data classes ${admission.data_classes.join(', ')})`,
    ...admission.rules.map((rule) => `  ${rule.effect.padEnd(7)} ${rule.id}: ${rule.reason}`),
    ...(admission.warnings ?? []).map((warning) => `  warning ${warning}`),
  ];
  if (result.change === 'pending')
    lines.push('  the plan change waits for a reviewer; the approved plan stays in force');
  if (app.status === 'approved' && app.constraints) {
    lines.push(
      `  constraints: ${app.constraints.daily_quota} requests a day, ${app.constraints.requests_per_minute} a minute; approved until ${app.approvedUntil ?? 'no end'}`,
    );
  }
  if (app.status === 'in_review' || result.change === 'pending') {
    lines.push(`  a reviewer decides: gatehouse login, then gatehouse app approve ${app.id} --reason TEXT`);
  }
  if (app.status === 'draft')
    lines.push(`  fix the plan and submit it again: gatehouse app update ${app.id} FILE`);
  report(options, lines.join('\n'), { ...viewOf(app), change: result.change ?? null });
  const decision = result.change === 'pending' ? 'review' : admission.decision;
  process.exitCode = app.status === 'approved' && result.change !== 'pending' ? 0 : planExit[decision];
}

/** The `tail` of an app as the admin API shows it. */
function viewTail(view: Record<string, unknown>): string {
  if (view.state === 'approved') return ` until ${String(view.approved_until ?? 'no end')}`;
  return typeof view.review_reason === 'string' ? `: ${view.review_reason}` : '';
}

/** Separation of duties needs to know who decides: the local operator is not verified. */
export function unverifiedDecision(what: string): GatehouseError {
  return new CatalogError(
    'SEPARATION_OF_DUTIES',
    `${what} needs a verified identity and the local operator is unverified: run gatehouse login first`,
  );
}

function tail(app: App): string {
  if (app.status === 'approved') return ` until ${app.approvedUntil ?? 'no end'}`;
  return app.reviewReason ? `: ${app.reviewReason}` : '';
}

function describeApp(
  app: App,
  history: ReadonlyArray<{
    at: string;
    action: string;
    from_state: string;
    to_state: string;
    actor: string;
    reason: string;
  }>,
): string {
  const lines = [
    `${app.id}  ${app.status}  owner ${app.owner}  (registered by ${app.requestedBy})`,
    `  scopes:        ${app.scopes.join(' ')}`,
    `  data classes:  ${app.dataClasses.join(', ') || '-'}   risk ${app.riskScore ?? '-'}`,
    `  consent:       ${typeof app.manifest.consent_purpose === 'string' ? app.manifest.consent_purpose : 'none in the plan (gateway.consent.appPurposes decides)'}`,
    ...(app.admission?.warnings ?? []).map((warning) => `  warning:       ${warning}`),
  ];
  if (app.approvedAt)
    lines.push(
      `  approved:      ${app.approvedAt} by ${app.approvedBy ?? '-'}, until ${app.approvedUntil ?? 'no end'}`,
    );
  if (app.constraints) {
    lines.push(
      `  constraints:   ${app.constraints.daily_quota} requests a day, ${app.constraints.requests_per_minute} a minute`,
    );
  }
  if (app.pending) {
    const purpose = app.pending.manifest.consent_purpose;
    lines.push(
      `  pending:       ${app.pending.scopes.join(' ')}; consent ${typeof purpose === 'string' ? purpose : 'none'} (asked by ${app.pending.requested_by})`,
    );
  }
  if (app.scan) {
    lines.push(
      `  scan:          ${app.scan.critical} critical, ${app.scan.high} high, ${app.scan.medium} medium, ${app.scan.low} low`,
    );
  }
  if (app.bundleDigest) lines.push(`  bundle:        ${app.bundleDigest}`);
  if (app.approvedDigest) lines.push(`  approved:      ${app.approvedDigest}`);
  if (app.reviewReason) lines.push(`  why:           ${app.reviewReason}`);
  lines.push(
    `  last used:     ${app.lastUsedAt ?? 'never (as far as the catalog has read the audit trail)'}`,
  );
  lines.push('  history:');
  for (const entry of history) {
    lines.push(
      `    ${entry.at}  ${entry.action.padEnd(8)} ${entry.from_state} -> ${entry.to_state}  by ${entry.actor}: ${entry.reason}`,
    );
  }
  return lines.join('\n');
}

function describeSuggestion(s: ScopeSuggestion, since: string): string {
  const lines = [`${s.app_id}: ${s.requests} allowed CRM requests since ${s.since} (${since})`];
  lines.push(`  holds:    ${s.held.join(' ')}`);
  lines.push(`  suggest:  ${s.suggested.join(' ') || '(none: no request used any scope)'}`);
  lines.push(`  drop:     ${s.drop.join(' ') || '(nothing)'}`);
  for (const use of s.usage) {
    lines.push(
      `  ${use.access} ${use.object}: used ${use.used_fields.join(', ')}` +
        (use.unused_fields.length ? `; never used ${use.unused_fields.join(', ')}` : ''),
    );
  }
  if (s.uncovered.length) lines.push(`  used without a held scope: ${s.uncovered.join(', ')}`);
  return lines.join('\n');
}
