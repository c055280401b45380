/**
 * Playbooks as code: the rule → action mapping, read from YAML, validated strictly, versioned by the
 * hash of its text. The shipped default is policies/playbooks.yaml.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { severities } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import { actionNames, type ActionName, type ThrottleSettings } from './containment.js';
import { ruleIds, severityRank, type DetectionScope, type RuleId, type Severity } from './types.js';

const entrySchema = z.strictObject({
  rule: z.enum([...ruleIds, '*']),
  min_severity: z.enum(severities).default('low'),
  /** Matches only detections aimed at the actor, or only app-wide ones; either when absent. */
  scope: z.enum(['actor', 'app']).optional(),
  actions: z.array(z.enum(actionNames)).min(1),
});

const playbookSchema = z.strictObject({
  version: z.literal(1),
  throttle: z
    .strictObject({
      rate_per_second: z.number().positive().max(10_000),
      for_seconds: z.number().int().positive().max(86_400),
    })
    .default({ rate_per_second: 0.5, for_seconds: 900 }),
  playbooks: z.array(entrySchema).min(1),
});

export interface Playbook {
  /** Short SHA-256 of the file's text: which playbook chose an incident's actions. */
  readonly version: string;
  readonly source: string;
  readonly throttle: ThrottleSettings;
  /** The actions for a detection of `rule` at `severity` and `scope` (actor by default): the first matching entry's. */
  actionsFor(rule: RuleId, severity: Severity, scope?: DetectionScope): readonly ActionName[];
}

/** The shipped default (policies/playbooks.yaml at the package root). */
export function defaultPlaybookFile(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/detect → ../../policies; the build output sits one level deeper (dist/src/detect).
  for (const candidate of [resolve(here, '../../policies'), resolve(here, '../../../policies')]) {
    const file = join(candidate, 'playbooks.yaml');
    if (existsSync(file)) return file;
  }
  throw new TypeError(`the default playbook was not found next to ${here}`);
}

/** The playbook in force: `configured`, else `<dataDir>/playbooks.yaml` if present, else the default. */
export function playbookFileFor(dataDir: string, configured?: string): string {
  if (configured) return resolve(dataDir, configured);
  const own = join(dataDir, 'playbooks.yaml');
  return existsSync(own) ? own : defaultPlaybookFile();
}

export function loadPlaybook(file: string): Playbook {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`playbook: cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? cause}`);
  }
  return parsePlaybook(text, file);
}

/** Parses and validates playbook text; ConfigError naming the file, the key and the problem. */
export function parsePlaybook(text: string, source: string): Playbook {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (cause) {
    throw new ConfigError(
      `playbook: ${source} is not valid YAML: ${(cause as Error).message.split('\n')[0]}`,
    );
  }
  const parsed = playbookSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      `playbook: ${source}: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`,
    );
  }
  const { playbooks, throttle } = parsed.data;
  const actionsFor = (
    rule: RuleId,
    severity: Severity,
    scope: DetectionScope,
  ): readonly ActionName[] | undefined =>
    playbooks.find(
      (entry) =>
        (entry.rule === rule || entry.rule === '*') &&
        (entry.scope === undefined || entry.scope === scope) &&
        severityRank[severity] >= severityRank[entry.min_severity],
    )?.actions;
  // Fail at load, not at 3 a.m.: every rule has actions at every severity and scope it may produce.
  for (const rule of ruleIds) {
    for (const severity of severities) {
      for (const scope of ['actor', 'app'] as const) {
        if (!actionsFor(rule, severity, scope)) {
          throw new ConfigError(
            `playbook: ${source}: no entry covers rule ${rule} at severity ${severity} (scope ${scope}); add one or a '*' entry`,
          );
        }
      }
    }
  }
  return {
    version: createHash('sha256').update(text).digest('hex').slice(0, 12),
    source,
    throttle: { ratePerSecond: throttle.rate_per_second, forSeconds: throttle.for_seconds },
    actionsFor: (rule, severity, scope = 'actor') => actionsFor(rule, severity, scope) ?? ['alert'],
  };
}
