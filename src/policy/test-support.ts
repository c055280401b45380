import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  buildPolicySet,
  defaultPolicyDir,
  readPolicyFiles,
  type PolicyFile,
  type PolicySet,
} from './library.js';
import type { Principal } from './runtime.js';

/** Helpers shared by the policy tests (not exported from the module). */

export async function defaultFiles(): Promise<PolicyFile[]> {
  return readPolicyFiles(defaultPolicyDir());
}

/** The default library with files added or replaced (`text: null` removes a file), validated in memory. */
export async function variant(changes: Record<string, string | null>): Promise<PolicySet> {
  const files = (await defaultFiles()).filter((f) => !(f.path in changes));
  for (const [path, text] of Object.entries(changes)) if (text !== null) files.push({ path, text });
  return buildPolicySet('(test)', files);
}

/** Writes a library to a fresh temporary directory and returns the directory. */
export async function writeLibrary(files: readonly PolicyFile[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-policy-'));
  for (const file of files) {
    const path = join(dir, ...file.path.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, file.text);
  }
  return dir;
}

export function principal(
  userId: string,
  role: string,
  territory: string | undefined,
  appId = 'call-notes',
): Principal {
  return {
    userId,
    email: `${userId}@example.com`,
    role,
    territory,
    appId,
    clientId: appId,
    scopes: ['read:contact.basic'],
  };
}

export const alice = principal('alice', 'sales_rep', 'EMEA');
export const bob = principal('bob', 'sales_manager', 'EMEA', 'pipeline-dashboard');
export const erin = principal('erin', 'sales_rep', 'NA');
export const dave = principal('dave', 'admin', undefined, 'console');
