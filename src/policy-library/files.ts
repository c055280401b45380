import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildPolicySet,
  POLICY_KINDS,
  PolicyInvalid,
  SCHEMA_FILE,
  type PolicyFile,
  type PolicySet,
} from '../policy/index.js';

/**
 * A policy library on disk. Layout of a policy directory:
 *   gatehouse.cedarschema   the schema (Cedar text syntax)
 *   admission/*.cedar       registration and deploy gates (actions approve, deploy)
 *   runtime/*.cedar         gateway decisions (actions read, write, export, aggregate)
 *   tests/*.yaml|yml|json   test cases (not part of the version)
 */

/** The default library shipped with Gatehouse (`policies/` at the package root). */
export function defaultPolicyDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/policy-library → ../../policies; the build output sits one level deeper (dist/src/policy-library).
  for (const candidate of [resolve(here, '../../policies'), resolve(here, '../../../policies')]) {
    if (existsSync(join(candidate, SCHEMA_FILE))) return candidate;
  }
  throw new TypeError(`the default policy library was not found next to ${here}`);
}

/**
 * Reads, validates and pre-parses the library in `dir` (the default library when absent). Throws
 * PolicyInvalid (POLICY_INVALID) with Cedar's message and the file:line:column for any problem.
 */
export async function loadPolicySet(dir?: string): Promise<PolicySet> {
  const root = resolve(dir ?? defaultPolicyDir());
  return buildPolicySet(root, await readPolicyFiles(root));
}

/** All files of a policy directory that make up a version, sorted by path. */
export async function readPolicyFiles(root: string): Promise<PolicyFile[]> {
  const schemaPath = join(root, SCHEMA_FILE);
  if (!existsSync(schemaPath)) {
    throw new PolicyInvalid(`no ${SCHEMA_FILE} in the policy directory ${root}`);
  }
  const files: PolicyFile[] = [{ path: SCHEMA_FILE, text: await readFile(schemaPath, 'utf8') }];
  for (const kind of POLICY_KINDS) {
    const sub = join(root, kind);
    if (!existsSync(sub)) continue;
    for (const entry of await readdir(sub, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.cedar')) continue;
      const full = join(entry.parentPath, entry.name);
      files.push({ path: relative(root, full).split(sep).join('/'), text: await readFile(full, 'utf8') });
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The test case files of a library (`tests/*.yaml|yml|json`): not part of its version. */
export async function readPolicyTestFiles(root: string): Promise<PolicyFile[]> {
  const dir = join(root, TESTS_DIR);
  if (!existsSync(dir)) return [];
  const files: PolicyFile[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !/\.(ya?ml|json)$/.test(entry.name)) continue;
    files.push({ path: `${TESTS_DIR}/${entry.name}`, text: await readFile(join(dir, entry.name), 'utf8') });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

const TESTS_DIR = 'tests';
