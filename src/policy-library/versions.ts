import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicyFile } from '../policy/index.js';
import { readPolicyFiles, readPolicyTestFiles } from './files.js';

/**
 * Where published policy versions live: every node and the CLI read the same ones (the database, see
 * src/control). A version, once stored, never changes; the active one is whichever was activated last.
 */
export interface PolicyVersions {
  /** A stored version's library files and test cases; undefined when none has this version. */
  get(version: string): Promise<{ files: PolicyFile[]; tests: PolicyFile[] } | undefined>;
  /** Stores a version (validated by the caller); storing one that exists changes nothing. */
  put(version: string, files: readonly PolicyFile[], tests: readonly PolicyFile[]): Promise<void>;
  /** The version activated last; undefined when none ever was. */
  active(): Promise<string | undefined>;
  /** Makes a stored version the active one (every node switches to it). */
  activate(version: string): Promise<void>;
}

/**
 * Copies a data dir's published versions from before they lived in the store (`policies/versions/*`,
 * the active one named by `policies/current`) into `versions`, once: the pointer is taken over only
 * while the store has no active version. Answers the versions copied.
 */
export async function importPolicyDir(dataDir: string, versions: PolicyVersions): Promise<string[]> {
  const base = join(dataDir, 'policies');
  const names = (await readdir(join(base, 'versions')).catch(() => [] as string[])).filter((name) =>
    /^[0-9a-f]{12}$/.test(name),
  );
  const copied: string[] = [];
  for (const version of names.sort()) {
    if (await versions.get(version)) continue;
    const dir = join(base, 'versions', version);
    await versions.put(version, await readPolicyFiles(dir), await readPolicyTestFiles(dir));
    copied.push(version);
  }
  const pointer = join(base, 'current');
  if (existsSync(pointer) && (await versions.active()) === undefined) {
    const version = (await readFile(pointer, 'utf8')).trim();
    if (await versions.get(version)) await versions.activate(version);
  }
  return copied;
}
