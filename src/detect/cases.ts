/**
 * Playbook cases: an event sequence and the detections and actions it must lead to, run against the
 * rules and the playbook in force (policies/tests/playbooks.yaml runs in `npm test`).
 *
 *   cases:
 *     - name: an app pages through contacts at night
 *       config: { rules: { off_hours_bulk: { minRecords: 100 } } }     # optional, the detect section
 *       events:
 *         - { at: 2025-03-05T07:10:00Z, user: erin@example.com, app: call-notes, action: crm.list,
 *             object: contact, fields: "first_name,last_name", records: 50, repeat: 10, every: 30 }
 *       expect:
 *         detections: [mass_export, off_hours_bulk]          # in order of first detection; [] = quiet
 *         actions: { mass_export: [alert, revoke_app_tokens, suspend_app] }
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { detectSchema } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import type { Playbook } from './playbook.js';
import { replay, rulesFrom } from './rules/index.js';
import { eventOf } from './synthetic.js';
import { ruleIds, type RuleId } from './types.js';

const eventSchema = z.strictObject({
  at: z.iso.datetime(),
  user: z.string().default('alice@example.com'),
  role: z.string().optional(),
  app: z.string().default('call-notes'),
  action: z.string(),
  object: z.string().optional(),
  outcome: z.enum(['allow', 'deny', 'error']).optional(),
  reason: z.string().optional(),
  fields: z.string().optional(),
  records: z.number().int().min(0).optional(),
  network: z.string().optional(),
  repeat: z.number().int().min(1).max(100_000).default(1),
  every: z.number().min(0).default(1),
});

const caseSchema = z.strictObject({
  name: z.string().min(1),
  config: z.record(z.string(), z.unknown()).default({}),
  events: z.array(eventSchema).min(1),
  expect: z.strictObject({
    detections: z.array(z.enum(ruleIds)),
    actions: z.partialRecord(z.enum(ruleIds), z.array(z.string())).default({}),
  }),
});

const fileSchema = z.strictObject({ cases: z.array(caseSchema).min(1) });

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detections: readonly RuleId[];
  readonly actions: Readonly<Partial<Record<RuleId, readonly string[]>>>;
  /** What differs from the expectation, one line each. */
  readonly problems: readonly string[];
}

export function parseCases(text: string, source: string): z.infer<typeof fileSchema>['cases'] {
  const parsed = fileSchema.safeParse(parseYaml(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`playbook cases: ${source}: ${issue.path.map(String).join('.')}: ${issue.message}`);
  }
  return parsed.data.cases;
}

export function runCases(text: string, source: string, playbook: Playbook): CaseResult[] {
  return parseCases(text, source).map((c) => {
    const config = detectSchema.parse(c.config);
    const events = c.events.flatMap((e) =>
      Array.from({ length: e.repeat }, (_, i) =>
        eventOf({
          at: Date.parse(e.at) / 1000 + i * e.every,
          actor: e.user,
          role: e.role,
          app: e.app,
          action: e.action,
          object: e.object,
          outcome: e.outcome,
          reason: e.reason,
          fields: e.fields,
          records: e.records,
          network: e.network,
        }),
      ),
    );
    const found = replay(
      rulesFrom(config),
      events.map((event, index) => ({ index, event: { ...event, request_id: `syn-${index + 1}` } })),
    ).detections;
    const detections = [...new Set(found.map((d) => d.rule))];
    const actions: Partial<Record<RuleId, readonly string[]>> = {};
    for (const d of found) actions[d.rule] ??= playbook.actionsFor(d.rule, d.severity, d.scope);
    const problems: string[] = [];
    if (detections.join(',') !== c.expect.detections.join(',')) {
      problems.push(
        `detections: expected [${c.expect.detections.join(', ')}], got [${detections.join(', ')}]`,
      );
    }
    for (const [rule, expected] of Object.entries(c.expect.actions)) {
      const got = actions[rule as RuleId] ?? [];
      if (got.join(',') !== (expected ?? []).join(',')) {
        problems.push(
          `actions of ${rule}: expected [${(expected ?? []).join(', ')}], got [${got.join(', ')}]`,
        );
      }
    }
    return { name: c.name, ok: problems.length === 0, detections, actions, problems };
  });
}
