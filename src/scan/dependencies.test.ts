import { describe, expect, it } from 'vitest';
import { checkPackageJson, pinOf } from './dependencies.js';
import { lineIndex } from './lines.js';

describe('pinOf', () => {
  it.each([
    ['1.2.3', 'exact'],
    ['=1.2.3', 'exact'],
    ['v1.2.3', 'exact'],
    ['1.2.3-beta.1+build.5', 'exact'],
    ['npm:string-width@4.2.3', 'exact'],
    ['npm:@scope/pkg@4.2.3', 'exact'],
    ['git+https://github.com/user/repo.git#0123456789abcdef0123456789abcdef01234567', 'exact'],
    ['user/repo#0123456789abcdef0123456789abcdef01234567', 'exact'],
    ['file:../shared', 'local'],
    ['workspace:*', 'local'],
    ['^1.2.3', 'range'],
    ['~1.2.3', 'range'],
    ['*', 'range'],
    ['', 'range'],
    ['latest', 'range'],
    ['next', 'range'],
    ['1.x', 'range'],
    ['>=1.0.0 <2.0.0', 'range'],
    ['1.2.3 || 2.0.0', 'range'],
    ['1.2', 'range'],
    ['npm:string-width@^4', 'range'],
    ['github:user/repo', 'remote'],
    ['user/repo#main', 'remote'],
    ['git+ssh://git@github.com/user/repo.git', 'remote'],
    ['https://example.com/pkg-1.0.0.tgz', 'remote'],
    ['http://example.com/pkg-1.0.0.tgz', 'insecure'],
  ])('%j is %s', (spec, pin) => {
    expect(pinOf(spec)).toBe(pin);
  });
});

describe('checkPackageJson', () => {
  const check = (manifest: unknown) => {
    const text = JSON.stringify(manifest, null, 2);
    return checkPackageJson(text, 'package.json', lineIndex(text));
  };

  it('passes exact versions and ignores peer dependencies', () => {
    expect(
      check({ dependencies: { a: '1.0.0' }, devDependencies: { b: '2.0.0' }, peerDependencies: { c: '^3' } }),
    ).toEqual({ findings: [], hasDependencies: true });
    expect(check({ name: 'x' })).toEqual({ findings: [], hasDependencies: false });
  });

  it('names each unpinned dependency with its line; dev dependencies are low', () => {
    const { findings } = check({
      name: 'x',
      dependencies: { a: '^1.0.0', b: '1.0.0', c: 'latest' },
      devDependencies: { d: '~2.0.0' },
    });
    expect(findings.map((f) => [f.rule, f.severity, f.line, f.message.split(' is ')[0]])).toEqual([
      ['deps.unpinned', 'medium', 4, 'dependencies: a'],
      ['deps.unpinned', 'medium', 6, 'dependencies: c'],
      ['deps.unpinned', 'low', 9, 'devDependencies: d'],
    ]);
  });

  it('flags URL sources, plain http as high', () => {
    const { findings } = check({ dependencies: { a: 'github:u/r', b: 'http://example.com/b.tgz' } });
    expect(findings.map((f) => [f.rule, f.severity])).toEqual([
      ['deps.remote_source', 'medium'],
      ['deps.remote_source', 'high'],
    ]);
  });

  it('flags CRM SDKs as a gateway bypass, even when pinned', () => {
    const { findings } = check({ dependencies: { jsforce: '3.6.0', '@hubspot/api-client': '13.0.0' } });
    expect(findings.map((f) => [f.rule, f.severity])).toEqual([
      ['crm.sdk_dependency', 'high'],
      ['crm.sdk_dependency', 'high'],
    ]);
  });

  it('reports a manifest that is not JSON instead of skipping it', () => {
    expect(checkPackageJson('{ "dependencies": ', 'package.json', lineIndex('')).findings).toEqual([
      expect.objectContaining({ rule: 'deps.manifest_invalid', severity: 'medium' }),
    ]);
  });

  it('does not let a package name reach the terminal raw', () => {
    const { findings } = check({ dependencies: { 'evil\u001b[2Jname': '^1.0.0' } });
    expect(findings[0]!.message).not.toContain('\u001b');
  });
});
