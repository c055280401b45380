import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../config/index.js';
import { InputError, toCliLine } from '../../errors/index.js';
import {
  judgeManifest,
  loadActivePolicySet,
  loadPolicySet,
  parseCases,
  publishPolicySet,
  runPolicyTests,
  simulatePolicies,
  type AdmissionResult,
  type PolicySet,
} from '../../policy/index.js';

import { commandConfig, report, withCommonOptions, type CommonOptions } from '../context.js';

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
          'run policy test cases ({ principal, action, resource, context, expect } or { manifest, expect })',
        )
        .argument('<file>', 'test cases (JSON or YAML)'),
    ),
  ).action(async (file: string, options: PolicyOptions) => {
    const config = commandConfig(options);
    const policies = await policySet(options, config);
    const cases = parseCases(await readDocument(file));
    const results = runPolicyTests(policies, cases, { fieldsets: config.scopes });
    const failed = results.filter((r) => !r.passed);
    const lines = results.map(
      (r) => `${r.passed ? 'pass' : 'FAIL'}  ${r.name}${r.passed ? '' : `: ${r.problems.join('; ')}`}`,
    );
    lines.push(
      `${results.length - failed.length}/${results.length} passed (policy version ${policies.version})`,
    );
    report(options, lines.join('\n'), { version: policies.version, passed: failed.length === 0, results });
    if (failed.length > 0) process.exitCode = 1;
  });

  withCommonOptions(
    policyOption(
      policy
        .command('simulate')
        .description('replay requests against a candidate library and show the decisions that would change')
        .requiredOption('--candidate <dir>', 'the candidate policy directory')
        .requiredOption('--requests <file>', 'requests to replay, in the policy test format (JSON or YAML)'),
    ),
  ).action(async (options: PolicyOptions & { candidate: string; requests: string }) => {
    const config = commandConfig(options);
    const current = await policySet(options, config);
    const candidate = await loadPolicySet(options.candidate);
    const requests = parseCases(await readDocument(options.requests));
    const result = simulatePolicies(current, candidate, requests, { fieldsets: config.scopes });
    const lines = result.changed.map(
      (c) =>
        `${c.name}: ${c.before.decision} → ${c.after.decision}` +
        (c.after.policyIds.length > 0 ? ` (${c.after.policyIds.join(', ')})` : ''),
    );
    lines.push(
      `${result.changed.length} of ${result.total} decisions change from ${current.version} to ${candidate.version}`,
    );
    report(options, lines.join('\n'), { from: current.version, to: candidate.version, ...result });
  });

  withCommonOptions(
    policy
      .command('publish')
      .description('validate a policy directory and make it the active version of the data directory')
      .argument('<dir>', 'policy directory (gatehouse.cedarschema, admission/, runtime/)'),
  ).action(async (dir: string, options: CommonOptions) => {
    const config = commandConfig(options);
    const set = await publishPolicySet(dir, config.dataDir);
    report(options, `published policy version ${set.version} (${set.policies.size} policies)`, {
      version: set.version,
      policies: [...set.policies.keys()],
    });
  });
}

function policyOption(command: Command): Command {
  return command.option(
    '--policies <dir>',
    'policy directory (default: the published version, else the built-in library)',
  );
}

async function policySet(options: PolicyOptions, config: Config): Promise<PolicySet> {
  return options.policies ? loadPolicySet(options.policies) : loadActivePolicySet(config.dataDir);
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
  return [head, ...result.rules.map((r) => `  ${r.effect.padEnd(7)} ${r.id}: ${r.reason}`)].join('\n');
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
