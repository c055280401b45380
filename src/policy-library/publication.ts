import type { AuditEvent } from '../audit/index.js';
import { resolve } from 'node:path';
import { InputError } from '../errors/index.js';
import {
  buildPolicySet,
  PolicyInvalid,
  policyVersion,
  testLibrary,
  type PolicyFile,
  type PolicySet,
  type PublishedTests,
  type PublishGate,
} from '../policy/index.js';
import { defaultPolicyDir, loadPolicySet, readPolicyFiles, readPolicyTestFiles } from './files.js';
import type { PolicyVersions } from './versions.js';

/** What a publish changed: the version before (the built-in library's when none was published) and after. */
export interface Publication {
  readonly set: PolicySet;
  readonly previous: string;
  /** The library's own test cases run against it; `forced` when published although some failed. */
  readonly tests: PublishedTests;
}

/**
 * Publishing: a validated library stored as a version (with its test cases) in `versions`, then made
 * the active one. Invalid libraries are refused before anything is written.
 */
export async function publishPolicySet(
  sourceDir: string,
  versions: PolicyVersions,
  gate: PublishGate,
  beforeActivate?: (publication: Publication) => Promise<void>,
): Promise<Publication> {
  const root = resolve(sourceDir);
  const [files, tests] = await Promise.all([readPolicyFiles(root), readPolicyTestFiles(root)]);
  return publishPolicyFiles(files, tests, versions, gate, beforeActivate, root);
}

/**
 * Publishes files already read (a candidate posted to the admin API, or a directory's). `beforeActivate`
 * runs once the version is validated and stored and before it becomes the active one: the audit event
 * of the change is appended there, so a change that cannot be recorded is not made.
 */
export async function publishPolicyFiles(
  files: readonly PolicyFile[],
  tests: readonly PolicyFile[],
  versions: PolicyVersions,
  gate: PublishGate,
  beforeActivate?: (publication: Publication) => Promise<void>,
  source = '(candidate)',
): Promise<Publication> {
  const set = buildPolicySet(source, files);
  const testResults = testLibrary(set, tests, gate);
  const previous =
    (await publishedVersion(versions)) ?? policyVersion(await readPolicyFiles(defaultPolicyDir()));
  const version = set.version;
  await versions.put(version, files, tests);
  const publication = {
    set: Object.freeze({ ...set, dir: publishedDir(version), tests: Object.freeze([...tests]) }),
    previous,
    tests: testResults,
  };
  await beforeActivate?.(publication);
  await versions.activate(version);
  return publication;
}

/**
 * The audit event of a publish: who, the version before and after, and why. `note` says how the actor is known (e.g. that a CLI actor was asserted, not verified).
 */
export function publishAuditEvent(change: {
  actor: string;
  role: string;
  appId: string;
  requestId: string;
  previous: string;
  version: string;
  reason: string;
  note?: string;
  /** The publication's test results: a forced publish says so, with the count of failing cases. */
  tests?: PublishedTests;
}): AuditEvent {
  const forced = change.tests?.forced
    ? `forced past ${change.tests.failed} of ${change.tests.total} failing policy tests`
    : undefined;
  const parts = [`version ${change.previous} -> ${change.version}`, change.note, forced, change.reason];
  return {
    timestamp: new Date().toISOString(),
    actor_id: change.actor,
    actor_role: change.role,
    app_id: change.appId,
    action: 'policy.publish',
    resource_type: 'policy_library',
    resource_id: change.version,
    scope: '',
    request_id: change.requestId,
    trace_id: change.requestId,
    outcome: 'allow',
    reason: parts.filter(Boolean).join('; '),
    policy_version: change.version,
  };
}

/** A publish reason from a person: one line of printable text, 1–500 characters. */
export function publishReason(text: unknown): string {
  // Control characters (a newline forging a second log line, an escape sequence) become spaces.
  const line = typeof text === 'string' ? text.replace(/\p{Cc}+/gu, ' ').trim() : '';
  if (line.length === 0 || line.length > 500) {
    throw new InputError('a publish needs a reason of 1 to 500 characters', { parameter: 'reason' });
  }
  return line;
}

/** The active published version, or undefined when nothing was published. */
export async function publishedVersion(versions: PolicyVersions): Promise<string | undefined> {
  return versions.active();
}

/** What a published version's `dir` says: it lives in the store, not in a directory. */
const publishedDir = (version: string) => `(published version ${version})`;

/** The active published library, or the default library when none was published. */
export async function loadActivePolicySet(versions: PolicyVersions): Promise<PolicySet> {
  const version = await publishedVersion(versions);
  if (version === undefined) return loadPolicySet();
  const stored = await versions.get(version);
  if (!stored) {
    throw new PolicyInvalid(
      `the active policy version ${version} is missing from the store; publish the intended version again (gatehouse policy publish)`,
    );
  }
  const set = buildPolicySet(publishedDir(version), stored.files);
  if (set.version !== version) {
    throw new PolicyInvalid(
      `published policy version ${version} was modified in the store (now ${set.version})`,
    );
  }
  return Object.freeze({ ...set, tests: Object.freeze(stored.tests) });
}
