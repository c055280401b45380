import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../config/index.js';
import { InputError, toCliLine } from '../../errors/index.js';
import { openDecisionLog, simulateRecorded } from '../../decision-log/index.js';
import {
  judgeManifest,
  parseCases,
  runPolicyTests,
  runTestFiles,
  simulatePolicies,
  sinceTime,
  type AdmissionResult,
  type CaseResult,
  type PolicySet,
  type RecordedSimulation,
} from '../../policy/index.js';
import {
  loadActivePolicySet,
  loadPolicySet,
  publishAuditEvent,
  publishPolicySet,
  publishReason,
  readPolicyTestFiles,
} from '../../policy-library/index.js';
import { callAdmin, currentLogin, localOperator, type CliLogin } from '../login.js';
import {
  commandConfig,
  progressBar,
  report,
  withCommonOptions,
  withModules,
  type CommonOptions,
} from '../context.js';

/** Exit codes of `policy check` (CONTRACT.md "App manifest"). */
const checkExit = { approve: 0, deny: 1, invalid: 2, review: 3 } as const;

interface PolicyOptions extends CommonOptions {
  policies?: string;
}

interface CheckOptions extends PolicyOptions {
  deploy?: boolean;
  approved?: boolean;
  tableSize?: string[];
}

export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description('policy as code: check manifests, test, simulate and publish the Cedar policy library');

  withCommonOptions(
    policyOption(
      policy
        .command('check')
        .description('judge an app manifest: exit 0 approve, 3 review, 1 deny, 2 not a valid manifest')
        .argument('<file>', 'manifest (JSON or YAML)')
        .option('--deploy', 'judge the deploy gate instead of registration')
        .option('--approved', 'the app was already approved by a reviewer (deploy gate)')
        .option('--table-size <object=n...>', 'records in a CRM table, for the 1% rule (e.g. contact=2000)'),
    ),
  ).action(async (file: string, options: CheckOptions) => {
    let manifest: unknown;
    try {
      manifest = parseDocument(await readFile(file, 'utf8'));
    } catch (error) {
      const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
      return invalid(options, file, [`cannot read the manifest: ${why}`]);
    }
    const config = commandConfig(options);
    const policies = await policySet(options, config);
    const result = judgeManifest(policies, manifest, {
      fieldsets: config.scopes,
      consentPurposes: config.gateway.consent.purposes,
      tableSizes: tableSizes(options.tableSize),
      action: options.deploy ? 'deploy' : 'approve',
      approved: options.approved ?? false,
    });
    if (result.decision === 'invalid') return invalid(options, file, result.errors);
    report(options, describe(file, result), result);
    process.exitCode = checkExit[result.decision];
  });

  withCommonOptions(
    policyOption(
      policy
        .command('test')
        .description(
          'run policy test cases ({ principal, action, resource, context, expect } or { manifest, expect }): ' +
            'a file of cases, or a library directory and its tests/ (default: the active library)',
        )
        .argument('[path]', 'test cases (JSON or YAML), or a policy directory with tests/'),
    ),
  ).action(async (path: string | undefined, options: PolicyOptions) => {
    const config = commandConfig(options);
    const context = { fieldsets: config.scopes, consentPurposes: config.gateway.consent.purposes };
    let policies: PolicySet;
    let files: { file: string; results: CaseResult[] }[];
    if (path !== undefined && !(await stat(path).catch(() => undefined))?.isDirectory()) {
      policies = await policySet(options, config);
      files = [
        { file: path, results: runPolicyTests(policies, parseCases(await readDocument(path)), context) },
      ];
    } else {
      policies =
        path !== undefined && !options.policies
          ? await loadPolicySet(path)
          : await policySet(options, config);
      const tests =
        path === undefined && policies.tests
          ? policies.tests
          : await readPolicyTestFiles(path ?? policies.dir);
      if (tests.length === 0) throw new InputError(`no test cases in ${join(path ?? policies.dir, 'tests')}`);
      files = runTestFiles(policies, tests, context);
    }
    const results = files.flatMap((f) => f.results);
    const failed = results.filter((r) => !r.passed);
    const lines = files.flatMap((f) => [
      ...(files.length > 1 ? [f.file] : []),
      ...f.results.map(
        (r) => `${r.passed ? 'pass' : 'FAIL'}  ${r.name}${r.passed ? '' : `: ${r.problems.join('; ')}`}`,
      ),
    ]);
    lines.push(
      `${results.length - failed.length}/${results.length} passed (policy version ${policies.version})`,
    );
    report(options, lines.join('\n'), {
      version: policies.version,
      passed: failed.length === 0,
      results,
      files: files.map((f) => ({ file: f.file, passed: f.results.every((r) => r.passed) })),
    });
    if (failed.length > 0) process.exitCode = 1;
  });

  withCommonOptions(
    policyOption(
      policy
        .command('simulate')
        .description(
          'replay the decisions recorded by the gateway under a candidate library and report what would change',
        )
        .requiredOption('--candidate <dir>', 'the candidate policy directory')
        .option('--since <when>', 'replay decisions recorded since: 7d, 12h, 30m or an ISO 8601 time', '7d')
        .option(
          '--requests <file>',
          'replay these requests (policy test format) against the active library instead of the recorded ones',
        ),
    ),
  ).action(async (options: PolicyOptions & { candidate: string; since: string; requests?: string }) => {
    const config = commandConfig(options);
    const candidate = await loadPolicySet(options.candidate);
    if (options.requests) {
      const current = await policySet(options, config);
      const requests = parseCases(await readDocument(options.requests));
      const result = simulatePolicies(current, candidate, requests, {
        fieldsets: config.scopes,
        consentPurposes: config.gateway.consent.purposes,
      });
      const lines = result.changed.map(
        (c) =>
          `${c.name}: ${c.before.decision} → ${c.after.decision}` +
          (c.after.policyIds.length > 0 ? ` (${c.after.policyIds.join(', ')})` : ''),
      );
      lines.push(
        `${result.changed.length} of ${result.total} decisions change from ${current.version} to ${candidate.version}`,
      );
      report(options, lines.join('\n'), { from: current.version, to: candidate.version, ...result });
      return;
    }
    const since = sinceTime(options.since);
    const { openGatehouseStore } = await import('../../database/index.js');
    const store = await openGatehouseStore(config);
    try {
      const progress = progressBar('replaying recorded decisions');
      const result = await simulateRecorded(candidate, openDecisionLog(store.db), since, progress.update);
      progress.stop();
      report(options, describeSimulation(result, options.since), result);
    } finally {
      await store.close();
    }
  });

  withCommonOptions(
    policy
      .command('publish')
      .description(
        'validate a policy directory, record the change in the audit trail and make it the active version',
      )
      .argument('<dir>', 'policy directory (gatehouse.cedarschema, admission/, runtime/, tests/)')
      .requiredOption('--reason <text>', 'why; recorded in the audit trail')
      .option('--force', "publish although the library's tests fail (recorded in the audit trail)"),
  ).action(async (dir: string, options: CommonOptions & { reason: string; force?: boolean }) => {
    const reason = publishReason(options.reason);
    const login = await currentLogin(options);
    if (login !== undefined) {
      const published = await callAdmin(login, 'POST', '/admin/v1/policies/publish', {
        files: await candidateOf(login, dir),
        reason,
        ...(options.force === true ? { force: true } : {}),
      });
      report(
        options,
        `published policy version ${String(published.version)} (was ${String(published.previous)}) as ${login.user}; running servers switch within a second`,
        published,
      );
      return;
    }
    const osUser = userInfo().username;
    await withModules(options, async ({ config, store, audit: openAudit }) => {
      const audit = await openAudit();
      const { openPolicyVersions } = await import('../../control/index.js');
      const versions = await openPolicyVersions(store.db, config.dataDir);
      // The audit event goes in before the version becomes active: a change that cannot be
      // recorded is not made. Without a login the actor is the unverified local operator.
      const gate = {
        context: { fieldsets: config.scopes, consentPurposes: config.gateway.consent.purposes },
        force: options.force === true,
      };
      const publication = await publishPolicySet(dir, versions, gate, async (publication) => {
        await audit.append(
          publishAuditEvent({
            actor: localOperator.id,
            role: localOperator.role,
            appId: 'gatehouse-cli',
            requestId: `policy-publish-${randomUUID()}`,
            previous: publication.previous,
            version: publication.set.version,
            reason,
            tests: publication.tests,
            note: `local operator, not verified: os user ${osUser} on ${hostname()}`,
          }),
        );
      });
      const { set, previous, tests } = publication;
      const forced = tests.forced ? `; forced past ${tests.failed} of ${tests.total} failing tests` : '';
      report(
        options,
        `published policy version ${set.version} (was ${previous}, ${set.policies.size} policies, ${tests.total - tests.failed}/${tests.total} tests pass${forced}); running servers switch within a second`,
        { version: set.version, previous, policies: [...set.policies.keys()], tests },
      );
    });
  });
}

function describeSimulation(result: RecordedSimulation & { since: string }, since: string): string {
  const recorded = Object.entries(result.recorded)
    .map(([version, n]) => `${version} (${n})`)
    .join(', ');
  const lines = [
    `replayed ${result.total} decisions recorded since ${result.since} (${since}) under candidate ${result.candidate}` +
      (recorded ? `; recorded under ${recorded}` : ''),
  ];
  const labels = {
    allow_to_deny: 'allow → deny',
    deny_to_allow: 'deny → allow',
    row_filter_changed: 'row filter changed',
  } as const;
  let changed = 0;
  for (const [kind, label] of Object.entries(labels) as [keyof typeof labels, string][]) {
    const group = result.changes[kind];
    changed += group.count;
    lines.push(`${label}: ${group.count}`);
    for (const rule of group.rules) {
      lines.push(`  ${rule.rule}  ${rule.count}  e.g. ${rule.examples.join(', ')}`);
    }
  }
  if (result.unreadable > 0)
    lines.push(`${result.unreadable} stored decisions could not be read and were skipped`);
  lines.push(`${changed} of ${result.total} decisions would change`);
  return lines.join('\n');
}

function policyOption(command: Command): Command {
  return command.option(
    '--policies <dir>',
    'policy directory (default: the published version, else the built-in library)',
  );
}

async function policySet(options: PolicyOptions, config: Config): Promise<PolicySet> {
  if (options.policies) return loadPolicySet(options.policies);
  // A maker's CI checks a manifest with no Gatehouse around: the built-in library, and no store made.
  if (!config.database.url && !existsSync(join(config.dataDir, 'gatehouse.db'))) return loadPolicySet();
  const [{ openGatehouseStore }, { openPolicyVersions }] = await Promise.all([
    import('../../database/index.js'),
    import('../../control/index.js'),
  ]);
  const store = await openGatehouseStore(config);
  try {
    return await loadActivePolicySet(await openPolicyVersions(store.db, config.dataDir));
  } finally {
    await store.close();
  }
}

function invalid(options: CommonOptions, file: string, errors: readonly string[]): void {
  if (options.json) report(options, '', { decision: 'invalid', errors });
  else
    process.stderr.write(
      `${toCliLine(new InputError(`${file} is not a valid manifest: ${errors.join('; ')}`))}\n`,
    );
  process.exitCode = checkExit.invalid;
}

function describe(file: string, result: Exclude<AdmissionResult, { decision: 'invalid' }>): string {
  const { enrichment } = result;
  const head =
    `${result.decision}  ${file}  (policy version ${result.version}, risk ${enrichment.risk_score}, ` +
    `data classes ${enrichment.data_classes.join(', ')})`;
  const p = enrichment.processing;
  // Shown when the plan maps its processing (lawful basis, categories, residency); absent, nothing to show.
  const mapped = p.lawful_basis !== 'undeclared' || p.data_categories.length > 0 || p.region !== undefined;
  const processing = mapped
    ? [
        `  processing: basis ${p.lawful_basis}; purposes ${p.purposes.join('; ')}; ` +
          `categories ${p.data_categories.join(', ') || 'undeclared'}; region ${p.region ?? 'home'}` +
          (p.transfers.length > 0 ? `; transfers from ${p.transfers.join(', ')}` : ''),
      ]
    : [];
  return [
    head,
    ...processing,
    ...result.rules.map((r) => `  ${r.effect.padEnd(7)} ${r.id}: ${r.reason}`),
  ].join('\n');
}

async function readDocument(file: string): Promise<unknown> {
  try {
    return parseDocument(await readFile(file, 'utf8'));
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new InputError(`cannot read ${file}: ${why}`);
  }
}

/** JSON or YAML (YAML 1.2 is a superset of JSON). */
function parseDocument(text: string): unknown {
  return parseYaml(text, { prettyErrors: false, maxAliasCount: 100 });
}

function tableSizes(values: readonly string[] | undefined): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const value of values ?? []) {
    const match = /^(account|contact|opportunity|note)=([0-9]{1,12})$/.exec(value);
    if (!match) throw new InputError(`--table-size must look like contact=2000, not ${value}`);
    sizes[match[1] as string] = Number(match[2]);
  }
  return sizes;
}

/**
 * The directory as a candidate for the admin API: its policy files, and null for each file of the
 * active library it no longer has, so the server publishes exactly the directory.
 */
async function candidateOf(login: CliLogin, dir: string): Promise<Record<string, string | null>> {
  const { readPolicyFiles } = await import('../../policy-library/index.js');
  const files = await readPolicyFiles(resolve(dir));
  const active = (await callAdmin(login, 'GET', '/admin/v1/policies')).files as { path: string }[];
  const candidate: Record<string, string | null> = {};
  for (const { path } of active) candidate[path] = null;
  for (const { path, text } of files) candidate[path] = text;
  return candidate;
}
