import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyInvalid, type PolicyFile } from '../policy/index.js';
import { defaultPolicyDir, loadPolicySet, readPolicyTestFiles } from './files.js';
import { loadActivePolicySet, publishPolicySet } from './publication.js';
import { defaultFiles, writeLibrary } from './test-support.js';
import type { PolicyVersions } from './versions.js';

const runtimeRule = (body: string) => `@id("runtime.extra")\n@reason("test")\n${body}\n`;

describe('a library directory', () => {
  it('refuses a directory without a schema', async () => {
    await expect(loadPolicySet(await mkdtemp(join(tmpdir(), 'gatehouse-empty-')))).rejects.toMatchObject({
      code: 'POLICY_INVALID',
    });
  });
});

/** Versions kept in memory: the library's logic alone (src/control stores them in the database). */
function memoryVersions(): PolicyVersions {
  const stored = new Map<string, { files: PolicyFile[]; tests: PolicyFile[] }>();
  const activations: string[] = [];
  return {
    get: async (version) => stored.get(version),
    async put(version, files, tests) {
      if (!stored.has(version)) stored.set(version, { files: [...files], tests: [...tests] });
    },
    active: async () => activations.at(-1),
    async activate(version) {
      activations.push(version);
    },
  };
}

describe('publish', () => {
  it('stores a validated version and makes it the active one', async () => {
    const versions = memoryVersions();
    expect((await loadActivePolicySet(versions)).version).toBe((await loadPolicySet()).version);
    const files = await defaultFiles();
    files.push({ path: 'runtime/extra.cedar', text: '// a new version\n' });
    const builtIn = (await loadPolicySet()).version;
    const { set: published, previous } = await publishPolicySet(await writeLibrary(files), versions, {
      context: {},
    });
    expect(previous).toBe(builtIn);
    expect(await versions.active()).toBe(published.version);
    expect((await loadActivePolicySet(versions)).version).toBe(published.version);
    const again = await publishPolicySet(defaultPolicyDir(), versions, { context: {} });
    expect(again).toMatchObject({ previous: published.version, set: { version: builtIn } });
    // The test cases travel with the published version, outside the version's hash.
    expect((await loadActivePolicySet(versions)).tests).toEqual(
      await readPolicyTestFiles(defaultPolicyDir()),
    );
  });

  it('refuses an invalid library and leaves the active version as it was', async () => {
    const versions = memoryVersions();
    const files = await defaultFiles();
    files.push({
      path: 'runtime/extra.cedar',
      text: runtimeRule('permit (principal, action, resource) when { 1 };'),
    });
    await expect(
      publishPolicySet(await writeLibrary(files), versions, { context: {} }),
    ).rejects.toBeInstanceOf(PolicyInvalid);
    expect(await versions.active()).toBeUndefined();
    expect((await loadActivePolicySet(versions)).version).toBe((await loadPolicySet()).version);
  });

  it('refuses a stored version whose files no longer hash to it (changed in the store)', async () => {
    const versions = memoryVersions();
    const { set } = await publishPolicySet(defaultPolicyDir(), versions, { context: {} });
    const stored = await versions.get(set.version);
    stored?.files.push({ path: 'runtime/extra.cedar', text: '// slipped in\n' });
    await expect(loadActivePolicySet(versions)).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });
});
