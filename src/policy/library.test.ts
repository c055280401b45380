import { describe, expect, it } from 'vitest';
import { defaultPolicyDir, loadPolicySet } from '../policy-library/index.js';
import { defaultFiles, variant, writeLibrary } from '../policy-library/test-support.js';
import { PolicyInvalid } from './index.js';
import { candidateFiles, policyVersion } from './library.js';

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
