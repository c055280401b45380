import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadActivePolicySet, loadPolicySet, publishPolicySet, PolicyInvalid } from './index.js';
import { defaultPolicyDir, policyVersion } from './library.js';
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

describe('publish', () => {
  it('stores a validated version in the data dir and makes it the active one', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-data-'));
    expect((await loadActivePolicySet(dataDir)).version).toBe((await loadPolicySet()).version);
    const files = await defaultFiles();
    files.push({ path: 'runtime/extra.cedar', text: '// a new version\n' });
    const published = await publishPolicySet(await writeLibrary(files), dataDir);
    expect((await readFile(join(dataDir, 'policies', 'current'), 'utf8')).trim()).toBe(published.version);
    expect((await loadActivePolicySet(dataDir)).version).toBe(published.version);
  });

  it('refuses an invalid library and leaves the active version as it was', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-data-'));
    const files = await defaultFiles();
    files.push({
      path: 'runtime/extra.cedar',
      text: runtimeRule('permit (principal, action, resource) when { 1 };'),
    });
    await expect(publishPolicySet(await writeLibrary(files), dataDir)).rejects.toBeInstanceOf(PolicyInvalid);
    expect((await loadActivePolicySet(dataDir)).version).toBe((await loadPolicySet()).version);
  });
});
