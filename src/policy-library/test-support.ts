import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildPolicySet, type PolicyFile, type PolicySet } from '../policy/index.js';
import { defaultPolicyDir, readPolicyFiles } from './files.js';

/** Libraries for the policy tests, from the shipped one (not exported from the module). */

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
