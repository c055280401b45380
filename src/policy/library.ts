import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { InputError } from '../errors/index.js';
import type { AdmissionContext } from './admission.js';
import { lineColumn, PolicyInvalid, PolicyTestsFailed } from './errors.js';
import { runTestFiles } from './testing.js';

/**
 * The policy library: a Cedar schema and `.cedar` files, validated against the schema (strict mode),
 * identified by a version that is a hash of their contents, and pre-parsed once per version into the
 * Wasm module so that a decision does not re-parse policy text. Built from file contents only: reading
 * them from a directory or the store is src/policy-library's.
 *
 * Layout of a policy directory:
 *   gatehouse.cedarschema   the schema (Cedar text syntax)
 *   admission/*.cedar       registration and deploy gates (actions approve, deploy)
 *   runtime/*.cedar         gateway decisions (actions read, write, export, aggregate)
 */

export const SCHEMA_FILE = 'gatehouse.cedarschema';
export const POLICY_KINDS = ['admission', 'runtime'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

export interface PolicyInfo {
  readonly id: string;
  readonly kind: PolicyKind;
  readonly effect: 'permit' | 'forbid';
  /** For admission forbids: whether the rule refuses the app or sends it to a reviewer. */
  readonly severity: 'deny' | 'review' | undefined;
  readonly reason: string;
  /** Path relative to the policy directory, with forward slashes. */
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

export interface PolicyFile {
  readonly path: string;
  readonly text: string;
}

export interface PolicySet {
  /** Short SHA-256 of the sorted files (path and contents): the same files give the same version. */
  readonly version: string;
  readonly dir: string;
  readonly schema: string;
  readonly files: readonly PolicyFile[];
  readonly policies: ReadonlyMap<string, PolicyInfo>;
  /** Runtime policies by id, for partial evaluation (which has no pre-parsed form). */
  readonly runtimeText: Readonly<Record<string, string>>;
  /** Whether a runtime policy names a CRM record by id (then decisions depend on the record id). */
  readonly runtimeUsesRecordIds: boolean;
  /** Names under which the schema and the two policy sets are pre-parsed in the Wasm module. */
  readonly preparsed: { readonly schema: string; readonly admission: string; readonly runtime: string };
  /** A published version's test cases (it has no directory to read them from). */
  readonly tests?: readonly PolicyFile[];
}

export function policyVersion(files: readonly PolicyFile[]): string {
  const hash = createHash('sha256');
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    hash.update(`${file.path}\0${file.text}\0`);
  }
  return hash.digest('hex').slice(0, 12);
}

/** Validates files already read (also used by publish and by tests with in-memory libraries). */
export function buildPolicySet(dir: string, files: readonly PolicyFile[]): PolicySet {
  const schemaFile = files.find((f) => f.path === SCHEMA_FILE);
  if (!schemaFile) throw new PolicyInvalid(`no ${SCHEMA_FILE} in the policy directory ${dir}`);
  const schema = schemaFile.text;
  const parsedSchema = cedar.checkParseSchema(schema);
  if (parsedSchema.type === 'failure') throw fromCedar(parsedSchema.errors[0], schemaFile);

  const policies = new Map<string, PolicyInfo>();
  const byKind: Record<PolicyKind, Record<string, string>> = { admission: {}, runtime: {} };
  let usesRecordIds = false;

  for (const file of files) {
    if (file.path === SCHEMA_FILE) continue;
    const kind = file.path.split('/')[0] as PolicyKind;
    const parsed = cedar.checkParsePolicySet({ staticPolicies: file.text });
    if (parsed.type === 'failure') throw fromCedar(parsed.errors[0], file);
    const parts = cedar.policySetTextToParts(file.text);
    if (parts.type === 'failure') throw fromCedar(parts.errors[0], file);
    if (parts.policy_templates.length > 0) {
      throw new PolicyInvalid('policy templates are not supported in the library', {
        file: file.path,
        line: 1,
        column: 1,
      });
    }
    for (const text of parts.policies) {
      const json = cedar.policyToJson(text);
      if (json.type === 'failure') throw fromCedar(json.errors[0], file);
      const annotations = json.json.annotations ?? {};
      const id = annotations.id;
      const at = locate(file, text);
      if (!id) throw new PolicyInvalid('every policy needs an @id("...") annotation', at);
      if (!/^[a-z][a-z0-9._-]{0,127}$/.test(id)) {
        throw new PolicyInvalid(`@id("${id}") must be lower-case letters, digits, dots and dashes`, at, id);
      }
      if (!annotations.reason)
        throw new PolicyInvalid(`policy ${id} needs a @reason("...") annotation`, at, id);
      const previous = policies.get(id);
      if (previous) {
        throw new PolicyInvalid(
          `duplicate policy id ${id} (first in ${previous.file}:${previous.line})`,
          at,
          id,
        );
      }
      const effect = json.json.effect;
      let severity: PolicyInfo['severity'];
      if (kind === 'admission' && effect === 'forbid') {
        if (annotations.severity !== 'deny' && annotations.severity !== 'review') {
          throw new PolicyInvalid(
            `admission forbid ${id} needs @severity("deny") or @severity("review")`,
            at,
            id,
          );
        }
        severity = annotations.severity;
      }
      if (kind === 'runtime' && namesRecord(json.json)) usesRecordIds = true;
      policies.set(id, {
        id,
        kind,
        effect,
        severity,
        reason: annotations.reason,
        file: file.path,
        line: at.line,
        text,
      });
      byKind[kind][id] = text;
    }
  }

  // One validation of the whole library (each call re-parses the schema, which is slow in Wasm); only
  // when it fails is each file validated alone, so that the error points into the file.
  const all = { ...byKind.admission, ...byKind.runtime };
  const whole = cedar.validate({
    schema,
    policies: { staticPolicies: all },
    validationSettings: { mode: 'strict' },
  });
  if (whole.type === 'failure' || whole.validationErrors.length > 0) {
    for (const file of files) {
      if (file.path === SCHEMA_FILE) continue;
      const validated = cedar.validate({
        schema,
        policies: { staticPolicies: file.text },
        validationSettings: { mode: 'strict' },
      });
      if (validated.type === 'failure') throw fromCedar(validated.errors[0], file);
      const first = validated.validationErrors[0];
      if (first) throw fromCedar(first.error, file);
    }
    const first = whole.type === 'failure' ? whole.errors[0] : whole.validationErrors[0]?.error;
    throw fromCedar(first, schemaFile);
  }

  const version = policyVersion(files);
  const preparsed = {
    schema: `gatehouse/${version}`,
    admission: `gatehouse/${version}/admission`,
    runtime: `gatehouse/${version}/runtime`,
  };
  // Pre-parse once per version; the Wasm module keeps them for the life of the process.
  check(cedar.preparseSchema(preparsed.schema, schema), schemaFile);
  check(cedar.preparsePolicySet(preparsed.admission, { staticPolicies: byKind.admission }), schemaFile);
  check(cedar.preparsePolicySet(preparsed.runtime, { staticPolicies: byKind.runtime }), schemaFile);

  return Object.freeze({
    version,
    dir,
    schema,
    files: Object.freeze([...files]),
    policies,
    runtimeText: Object.freeze({ ...byKind.runtime }),
    runtimeUsesRecordIds: usesRecordIds,
    preparsed: Object.freeze(preparsed),
  });
}

function check(answer: cedar.CheckParseAnswer, file: PolicyFile): void {
  if (answer.type === 'failure') throw fromCedar(answer.errors[0], file);
}

function fromCedar(error: cedar.DetailedError | undefined, file: PolicyFile): PolicyInvalid {
  if (!error)
    return new PolicyInvalid('Cedar refused the library without a message', {
      file: file.path,
      line: 1,
      column: 1,
    });
  const offset = error.sourceLocations?.[0]?.start ?? 0;
  const label = error.sourceLocations?.[0]?.label;
  const details = [label, error.help].filter(Boolean).join('; ');
  const message = details ? `${error.message} (${details})` : error.message;
  return new PolicyInvalid(message, { file: file.path, ...lineColumn(file.text, offset) });
}

/** Where a policy (as re-printed by Cedar) starts in its file: the line of its @id annotation. */
function locate(file: PolicyFile, text: string): { file: string; line: number; column: number } {
  const id = /@id\s*\(\s*"([^"]*)"/.exec(text)?.[0];
  const offset = id ? file.text.indexOf(id) : file.text.indexOf(text.slice(0, 40));
  return { file: file.path, ...lineColumn(file.text, Math.max(0, offset)) };
}

const recordTypes = ['Gatehouse::Account', 'Gatehouse::Contact', 'Gatehouse::Opportunity', 'Gatehouse::Note'];

function namesRecord(json: cedar.PolicyJson): boolean {
  const text = JSON.stringify([json.resource, json.conditions]);
  return recordTypes.some((type) => text.includes(`"type":"${type}"`));
}

export interface PublishedTests {
  readonly total: number;
  readonly failed: number;
  readonly forced: boolean;
}

/**
 * What a publish checks besides validation: the library's test cases, run with the deployment's
 * fieldsets and consent purposes. `force` (with a reason the caller audits) publishes a failing library.
 */
export interface PublishGate {
  readonly context: AdmissionContext;
  readonly force?: boolean;
}

/** Runs the library's test cases; refuses (PolicyTestsFailed) when any fails, unless forced. */
export function testLibrary(set: PolicySet, tests: readonly PolicyFile[], gate: PublishGate): PublishedTests {
  const failures = runTestFiles(set, tests, gate.context).flatMap((file) =>
    file.results.map((result) => ({ file: file.file, result })),
  );
  const failed = failures.filter((f) => !f.result.passed);
  if (failed.length > 0 && !gate.force) {
    throw new PolicyTestsFailed(
      failed.length,
      failures.length,
      failed.slice(0, 3).map((f) => `${f.file}: ${f.result.name}: ${f.result.problems.join(', ')}`),
    );
  }
  return { total: failures.length, failed: failed.length, forced: failed.length > 0 };
}

/** Names a candidate file may have: the schema, or a `.cedar` file under admission/ or runtime/. */
const candidatePath =
  /^(?:gatehouse\.cedarschema|(?:admission|runtime)\/(?:[a-z0-9][a-z0-9_-]{0,63}\/){0,3}[a-z0-9][a-z0-9._-]{0,63}\.cedar)$/;
const maxCandidateFiles = 64;
const maxCandidateChars = 256 * 1024;

/** A candidate library (candidateFiles), validated and pre-parsed: Cedar's message and location when not. */
export function buildCandidate(
  base: readonly PolicyFile[],
  changes: Readonly<Record<string, string | null>>,
): PolicySet {
  return buildPolicySet('(candidate)', candidateFiles(base, changes));
}

/**
 * A candidate library: `base` with the files of `changes` added or replaced (`null` removes one). The
 * names come from a client, so each must be a plain relative path of the library's layout — no `..`,
 * no absolute path, no other extension — and the texts are size-capped. Not yet validated by Cedar.
 */
export function candidateFiles(
  base: readonly PolicyFile[],
  changes: Readonly<Record<string, string | null>>,
): PolicyFile[] {
  const names = Object.keys(changes);
  if (names.length === 0) throw new InputError('files names no policy file', { parameter: 'files' });
  if (names.length > maxCandidateFiles) {
    throw new InputError(`at most ${maxCandidateFiles} files`, { parameter: 'files' });
  }
  for (const name of names) {
    const text = changes[name];
    if (!candidatePath.test(name)) {
      throw new InputError(
        'a file name must be gatehouse.cedarschema or admission/NAME.cedar or runtime/NAME.cedar (lower case, no ..)',
        { parameter: 'files', file: /^[\w./-]{1,128}$/.test(name) ? name : '(invalid name)' },
      );
    }
    if (text !== null && typeof text !== 'string') {
      throw new InputError(`${name} must be the file's text, or null to remove it`, { parameter: 'files' });
    }
    if (typeof text === 'string' && text.length > maxCandidateChars) {
      throw new InputError(`${name} is longer than ${maxCandidateChars} characters`, { parameter: 'files' });
    }
    if (text === null && name === SCHEMA_FILE) {
      throw new InputError(`${SCHEMA_FILE} cannot be removed`, { parameter: 'files' });
    }
  }
  const files = base.filter((file) => !Object.hasOwn(changes, file.path));
  for (const name of names) {
    const text = changes[name];
    if (typeof text === 'string') files.push({ path: name, text });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
