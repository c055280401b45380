import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  loadActivePolicySet,
  loadPolicySet,
  publishPolicySet,
  PolicyInvalid,
  type PolicyFile,
  type PolicyVersions,
} from './index.js';
import { candidateFiles, defaultPolicyDir, policyVersion, readPolicyTestFiles } from './library.js';
import { defaultFiles, variant, writeLibrary } from './test-support.js';

const runtimeRule = (body: string) => `@id("runtime.extra")\n@reason("test")\n${body}\n`;

describe('the default library', () => {
  it('loads, validates and carries an @id and @reason on every policy', async () => {
    const set = await loadPolicySet();
    expect(set.version).toMatch(/^[0-9a-f]{12}$/);
    expect(set.policies.size).toBeGreaterThanOrEqual(15);
    for (const policy of set.policies.values()) {
      expect(policy.reason.length).toBeGreaterThan(5);
      expect(policy.id.startsWith(`${policy.kind}.`)).toBe(true);
    }
  });

  it('has a version that depends only on the files: same files, same version; any change, a new one', async () => {
    const files = await defaultFiles();
    const a = await loadPolicySet(defaultPolicyDir());
    const b = await loadPolicySet(await writeLibrary(files));
    expect(b.version).toBe(a.version);
    expect(policyVersion([...files].reverse())).toBe(a.version);
    const changed = await variant({ 'runtime/extra.cedar': '// only a comment\n' });
    expect(changed.version).not.toBe(a.version);
  });
});

describe("an invalid library is refused with Cedar's message and location", () => {
  it('refuses a syntax error with file, line and column', async () => {
    const bad = runtimeRule('permit (principal, action, resource)\nwhen { resource.territory == };');
    const error = await variant({ 'runtime/extra.cedar': bad }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyInvalid);
    expect(error).toMatchObject({
      code: 'POLICY_INVALID',
      location: { file: 'runtime/extra.cedar', line: 4 },
    });
    expect((error as PolicyInvalid).message).toContain('runtime/extra.cedar:4:');
  });

  it('refuses a policy that does not validate against the schema, naming the attribute', async () => {
    const bad = runtimeRule(
      'permit (principal, action == Gatehouse::Action::"read", resource)\nwhen { resource.region == "EMEA" };',
    );
    const error = (await variant({ 'runtime/extra.cedar': bad }).catch((e: unknown) => e)) as PolicyInvalid;
    expect(error).toMatchObject({
      code: 'POLICY_INVALID',
      location: { file: 'runtime/extra.cedar', line: 4 },
    });
    expect(error.message).toMatch(/region/);
  });

  it('refuses a policy without @id, without @reason, or with a duplicate id', async () => {
    const permit = 'permit (principal, action == Gatehouse::Action::"read", resource);';
    await expect(variant({ 'runtime/extra.cedar': `@reason("x")\n${permit}` })).rejects.toThrow(/@id/);
    await expect(variant({ 'runtime/extra.cedar': `@id("runtime.extra")\n${permit}` })).rejects.toThrow(
      /@reason/,
    );
    await expect(
      variant({ 'runtime/extra.cedar': `@id("runtime.sales-own-territory")\n@reason("x")\n${permit}` }),
    ).rejects.toThrow(/duplicate policy id runtime.sales-own-territory/);
  });

  it('refuses an admission forbid without a severity', async () => {
    const forbid =
      '@id("admission.extra")\n@reason("x")\nforbid (principal, action == Gatehouse::Action::"approve", resource);';
    await expect(variant({ 'admission/extra.cedar': forbid })).rejects.toMatchObject({
      code: 'POLICY_INVALID',
    });
  });

  it('refuses a schema that does not parse, pointing into the schema', async () => {
    const error = await variant({ 'gatehouse.cedarschema': 'namespace Gatehouse { entity User = ; }' }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'POLICY_INVALID',
      location: { file: 'gatehouse.cedarschema', line: 1 },
    });
  });

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

describe('candidate files posted by a client', () => {
  const base = [
    { path: 'gatehouse.cedarschema', text: 'schema' },
    { path: 'runtime/territory.cedar', text: 'old' },
  ];

  it('adds, replaces and removes files of the base library', () => {
    expect(
      candidateFiles(base, {
        'runtime/territory.cedar': null,
        'runtime/new.cedar': 'x',
        'admission/a.cedar': 'y',
      }),
    ).toEqual([
      { path: 'admission/a.cedar', text: 'y' },
      { path: 'gatehouse.cedarschema', text: 'schema' },
      { path: 'runtime/new.cedar', text: 'x' },
    ]);
  });

  it.each([
    '../etc/passwd',
    'runtime/../../x.cedar',
    '/runtime/x.cedar',
    'runtime\\x.cedar',
    'runtime/x.txt',
    'tests/x.cedar',
    'runtime/.hidden.cedar',
    'runtime/X.cedar',
    'runtime//x.cedar',
    'runtime/a/../x.cedar',
  ])('refuses the path-traversing or foreign name %s (422)', (name) => {
    expect(() => candidateFiles(base, { [name]: 'permit (principal, action, resource);' })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
  });

  it('refuses an oversized file, a non-text value, removing the schema and an empty change', () => {
    const refused = expect.objectContaining({ code: 'INVALID_INPUT' });
    expect(() => candidateFiles(base, { 'runtime/x.cedar': 'x'.repeat(300_000) })).toThrow(refused);
    expect(() => candidateFiles(base, { 'runtime/x.cedar': 42 as unknown as string })).toThrow(refused);
    expect(() => candidateFiles(base, { 'gatehouse.cedarschema': null })).toThrow(refused);
    expect(() => candidateFiles(base, {})).toThrow(refused);
  });
});
