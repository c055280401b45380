import { AccessDenied, GatehouseError, InputError } from '../errors/index.js';

/** Where in a policy or schema file Cedar found a problem; 1-based line and column. */
export interface PolicyLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * A policy library that Cedar refuses (syntax, validation against the schema, or a missing `@id` /
 * `@reason`). The message carries Cedar's own message and the file:line:column it points at.
 */
export class PolicyInvalid extends GatehouseError {
  readonly location: PolicyLocation | undefined;

  constructor(message: string, location?: PolicyLocation, policyId?: string) {
    const where = location ? `${location.file}:${location.line}:${location.column}: ` : '';
    super('POLICY_INVALID', `invalid policy library: ${where}${message}`, {
      extensions: {
        ...(location ? { file: location.file, line: location.line, column: location.column } : {}),
        ...(policyId ? { policy_id: policyId } : {}),
      },
    });
    this.location = location;
  }
}

/**
 * A publish refused because the library fails its own test cases; `--force` with a reason (audited)
 * is the only way past. Names the first failing cases so the publisher can fix them.
 */
export class PolicyTestsFailed extends GatehouseError {
  constructor(failed: number, total: number, firstFailures: readonly string[]) {
    super(
      'POLICY_TESTS_FAILED',
      `policy library fails ${failed} of its ${total} test cases (${firstFailures.join('; ')}); ` +
        'fix them, or publish with force and a reason, which the audit trail records',
      { extensions: { failed, total, failures: [...firstFailures] } },
    );
  }
}

/** A manifest that is not a valid security plan; `errors` names each field and what is wrong. */
export class ManifestInvalid extends InputError {
  readonly errors: readonly string[];

  constructor(errors: readonly string[]) {
    super(`invalid manifest: ${errors.join('; ')}`, { errors });
    this.errors = errors;
  }
}

/** The 403 of a runtime denial, naming the policy that decided and the version of the library. */
export function policyDenied(message: string, policyIds: readonly string[], version: string): AccessDenied {
  return new AccessDenied('POLICY_DENIED', message, {
    rule: policyIds[0] ?? 'default-deny',
    rules: [...policyIds],
    policy_version: version,
  });
}

/** 1-based line and column of a character offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  const end = Math.max(0, Math.min(offset, text.length));
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: end - start + 1 };
}
