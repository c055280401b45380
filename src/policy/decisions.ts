import { z } from 'zod';
import { InputError } from '../errors/index.js';
import {
  authorizeRequest,
  createPolicyCaches,
  fieldClassesOf,
  runtimeActions,
  sortedScopes,
  type AuthorizeInput,
  type AuthorizeResult,
  type PolicyCaches,
  type RuntimeAction,
} from './authorize.js';
import type { PolicySet } from './library.js';
import type { RowCondition } from './runtime.js';

/**
 * Recorded runtime decisions and their replay. The gateway records what Cedar was asked — ids, role,
 * territory, app, scopes, field names and classes, counts, the caller's network, the time — and what it
 * answered, never a record's contents or a token; `policy simulate` replays those inputs under a
 * candidate library and reports the decisions that would change, before anything is published.
 */

export interface RecordedInput {
  readonly principal: {
    readonly id: string;
    readonly email: string;
    readonly role: string;
    readonly territory?: string;
    readonly app: string;
    readonly scopes: readonly string[];
  };
  readonly action: RuntimeAction;
  readonly object: string;
  /** The record's attributes for a single-record decision; absent for a row filter (list, aggregate, create). */
  readonly resource?: {
    readonly id: string;
    readonly territory: string;
    readonly owner: string;
    readonly account: string;
  };
  readonly context: {
    readonly fields: readonly string[];
    readonly field_classes: readonly string[];
    readonly record_count: number;
    readonly ip: string;
  };
}

export interface RecordedDecision {
  readonly requestId: string;
  /** ISO 8601: when Cedar was asked; the hour and weekday of the context come from it. */
  readonly timestamp: string;
  readonly version: string;
  readonly input: RecordedInput;
  readonly allowed: boolean;
  readonly policyIds: readonly string[];
  /** The row filter an allowed row-filter decision compiled to. */
  readonly where?: readonly RowCondition[];
}

/** The record of one decision. `input.context.time` must be set: it is the decision's timestamp. */
export function recordDecision(
  requestId: string,
  input: AuthorizeInput & { context: { time: Date } },
  result: AuthorizeResult,
): RecordedDecision {
  const { principal, context, resource } = input;
  const fields = [...new Set(context.fields ?? [])].sort();
  return {
    requestId,
    timestamp: context.time.toISOString(),
    version: result.version,
    input: {
      principal: {
        id: principal.userId,
        email: principal.email,
        role: principal.role,
        ...(principal.territory !== undefined && { territory: principal.territory }),
        app: principal.appId,
        scopes: sortedScopes(principal),
      },
      action: input.action,
      object: input.object,
      ...(resource && {
        resource: {
          id: resource.id,
          territory: resource.territory,
          owner: resource.owner,
          account: resource.account ?? '',
        },
      }),
      context: {
        fields,
        // The classes Cedar saw: given, or derived from the default classification.
        field_classes: [...new Set(context.fieldClasses ?? fieldClassesOf(input.object, fields))].sort(),
        record_count: context.recordCount ?? 1,
        ip: context.ip ?? '0.0.0.0',
      },
    },
    allowed: result.allowed,
    // A decision is immutable (and cached): the record shares its lists rather than copying them.
    policyIds: result.policyIds,
    ...(result.where && { where: result.where }),
  };
}

const text = z.string().max(256);
const recordedInputSchema = z.strictObject({
  principal: z.strictObject({
    id: text.min(1),
    email: text,
    role: text.min(1),
    territory: text.optional(),
    app: text,
    scopes: z.array(text).max(256),
  }),
  action: z.enum(runtimeActions),
  object: z.enum(['account', 'contact', 'opportunity', 'note']),
  resource: z.strictObject({ id: text, territory: text, owner: text, account: text }).optional(),
  context: z.strictObject({
    fields: z.array(text).max(256),
    field_classes: z.array(text).max(16),
    record_count: z.number().int().min(0),
    ip: text,
  }),
});

/** A stored input, checked: the log is read back from the database, so it is parsed, not trusted. */
export function parseRecordedInput(json: string): RecordedInput | undefined {
  try {
    const parsed = recordedInputSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The decision `policies` would make on a recorded input. */
export function replayDecision(
  policies: PolicySet,
  decision: RecordedDecision,
  caches: PolicyCaches,
): AuthorizeResult {
  const { principal, context, resource } = decision.input;
  return authorizeRequest(
    policies,
    {
      principal: {
        userId: principal.id,
        email: principal.email,
        role: principal.role,
        territory: principal.territory,
        appId: principal.app,
        clientId: principal.app,
        scopes: principal.scopes,
      },
      action: decision.input.action,
      object: decision.input.object,
      ...(resource && { resource }),
      context: {
        fields: context.fields,
        fieldClasses: context.field_classes,
        recordCount: context.record_count,
        ip: context.ip,
        time: new Date(decision.timestamp),
      },
    },
    caches,
  );
}

export type ChangeKind = 'allow_to_deny' | 'deny_to_allow' | 'row_filter_changed';

export interface RuleChanges {
  /** The rule that decides under the candidate (`default-deny` when no policy matched). */
  readonly rule: string;
  readonly count: number;
  /** Up to five request ids of recorded decisions that change. */
  readonly examples: readonly string[];
}

export interface ChangeGroup {
  readonly count: number;
  readonly rules: readonly RuleChanges[];
}

export interface RecordedSimulation {
  readonly candidate: string;
  /** Decisions replayed, by the library version that recorded them. */
  readonly recorded: Readonly<Record<string, number>>;
  readonly total: number;
  readonly unchanged: number;
  /** Stored rows that could not be read back (skipped, never guessed at). */
  readonly unreadable: number;
  readonly changes: Readonly<Record<ChangeKind, ChangeGroup>>;
}

const maxExamples = 5;

/**
 * Replays recorded decisions under `candidate` and sorts what changes: a decision that flips, and an
 * allowed row filter that now compiles differently (a list that would show other records). Each change
 * is counted under the rules that decide it under the candidate.
 */
export class DecisionReplay {
  readonly #candidate: PolicySet;
  // Its own caches: replaying a week of decisions must not evict the ones live requests use.
  readonly #caches = createPolicyCaches();
  readonly #recorded = new Map<string, number>();
  readonly #groups: Record<ChangeKind, Map<string, { count: number; examples: string[] }>> = {
    allow_to_deny: new Map(),
    deny_to_allow: new Map(),
    row_filter_changed: new Map(),
  };
  readonly #counts: Record<ChangeKind, number> = {
    allow_to_deny: 0,
    deny_to_allow: 0,
    row_filter_changed: 0,
  };
  #total = 0;
  #unchanged = 0;
  #unreadable = 0;

  constructor(candidate: PolicySet) {
    this.#candidate = candidate;
  }

  /** A stored row that failed to parse. */
  skip(): void {
    this.#unreadable += 1;
  }

  add(decision: RecordedDecision): void {
    this.#total += 1;
    this.#recorded.set(decision.version, (this.#recorded.get(decision.version) ?? 0) + 1);
    const after = replayDecision(this.#candidate, decision, this.#caches);
    const kind = changeOf(decision, after);
    if (!kind) {
      this.#unchanged += 1;
      return;
    }
    this.#counts[kind] += 1;
    const rules = after.policyIds.length > 0 ? after.policyIds : ['default-deny'];
    for (const rule of rules) {
      const entry = this.#groups[kind].get(rule) ?? { count: 0, examples: [] };
      entry.count += 1;
      if (entry.examples.length < maxExamples && !entry.examples.includes(decision.requestId)) {
        entry.examples.push(decision.requestId);
      }
      this.#groups[kind].set(rule, entry);
    }
  }

  report(): RecordedSimulation {
    const group = (kind: ChangeKind): ChangeGroup => ({
      count: this.#counts[kind],
      rules: [...this.#groups[kind]]
        .map(([rule, { count, examples }]) => ({ rule, count, examples }))
        .sort((a, b) => b.count - a.count || (a.rule < b.rule ? -1 : 1)),
    });
    return {
      candidate: this.#candidate.version,
      recorded: Object.fromEntries([...this.#recorded].sort()),
      total: this.#total,
      unchanged: this.#unchanged,
      unreadable: this.#unreadable,
      changes: {
        allow_to_deny: group('allow_to_deny'),
        deny_to_allow: group('deny_to_allow'),
        row_filter_changed: group('row_filter_changed'),
      },
    };
  }
}

function changeOf(before: RecordedDecision, after: AuthorizeResult): ChangeKind | undefined {
  if (before.allowed && !after.allowed) return 'allow_to_deny';
  if (!before.allowed && after.allowed) return 'deny_to_allow';
  if (before.allowed && JSON.stringify(before.where ?? null) !== JSON.stringify(after.where ?? null)) {
    return 'row_filter_changed';
  }
  return undefined;
}

/** `7d`, `12h`, `30m` or an ISO 8601 time → the ISO time it stands for. */
export function sinceTime(value: string, now: Date = new Date()): string {
  const relative = /^([1-9][0-9]{0,4})([dhm])$/.exec(value);
  if (relative) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[relative[2] as 'd' | 'h' | 'm'];
    return new Date(now.getTime() - Number(relative[1]) * unit).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) {
    return new Date(value).toISOString();
  }
  throw new InputError('since must be a duration such as 7d, 12h or 30m, or an ISO 8601 time', {
    parameter: 'since',
  });
}
