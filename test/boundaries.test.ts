import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import ts from 'typescript';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { moduleBoundaries, readModuleTable } from '../scripts/module-boundaries.js';

/** The module boundary lint (src/modules.json → import/no-restricted-paths), run as `npm run lint` runs it. */

const repo = fileURLToPath(new URL('..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/boundaries/', import.meta.url));

type Found = Array<{ file: string; message: string }>;

function boundaryMessages(results: ESLint.LintResult[], base: string): Found {
  return results.flatMap((result) =>
    result.messages
      .filter((m) => m.ruleId === 'import/no-restricted-paths')
      .map((m) => ({ file: result.filePath.slice(base.length), message: m.message })),
  );
}

describe('module boundaries', () => {
  it('a fixture tree: reports the deep import and the arrow not in its table, and nothing else', async () => {
    const eslint = new ESLint({
      cwd: fixtures,
      overrideConfigFile: true,
      overrideConfig: [
        { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
        moduleBoundaries(readModuleTable(`${fixtures}modules.json`), { basePath: fixtures }),
      ],
    });
    const found = boundaryMessages(await eslint.lintFiles(['src/**/*.ts']), fixtures);
    expect(found).toEqual(
      expect.arrayContaining([
        {
          file: 'src/high/deep.ts',
          message: expect.stringContaining('deep import: high may use low only through low/index.ts'),
        },
        {
          file: 'src/low/reaches-up.ts',
          message: expect.stringContaining('low -> high is not an arrow of the module table'),
        },
      ]),
    );
    expect(found).toHaveLength(2);
  }, 60_000);

  it("the repository's own configuration enforces src/modules.json", async () => {
    const eslint = new ESLint({ cwd: repo });
    const lint = async (file: string, code: string) =>
      boundaryMessages(await eslint.lintText(code, { filePath: `${repo}${file}` }), repo);
    expect(
      await lint('src/store/probe.ts', "export { createCatalog } from '../catalog/index.js';\n"),
    ).toEqual([
      { file: 'src/store/probe.ts', message: expect.stringContaining('store -> catalog is not an arrow') },
    ]);
    expect(
      await lint('src/gateway/probe.ts', "export { authorizeRequest } from '../policy/authorize.js';\n"),
    ).toEqual([
      {
        file: 'src/gateway/probe.ts',
        message: expect.stringContaining('deep import: gateway may use policy'),
      },
    ]);
    expect(
      await lint('src/gateway/probe.ts', "export { authorizeRequest } from '../policy/index.js';\n"),
    ).toEqual([]);
    expect(
      await lint('src/policy/probe.ts', "export { loadPolicySet } from '../policy-library/index.js';\n"),
    ).toEqual([
      {
        file: 'src/policy/probe.ts',
        message: expect.stringContaining('policy -> policy-library is not an arrow'),
      },
    ]);
  }, 60_000);

  it('every folder under src/ is a module of the table, and every arrow names one', () => {
    const table = readModuleTable(`${repo}src/modules.json`);
    const names = Object.keys(table.modules);
    for (const { dependsOn } of Object.values(table.modules)) {
      for (const dependency of dependsOn) expect(names).toContain(dependency);
    }
    const folders = readdirSync(`${repo}src`, { withFileTypes: true }).filter((e) => e.isDirectory());
    expect(names).toEqual(expect.arrayContaining([...folders.map((e) => e.name), 'admin']));
  });

  it('policy is the pure decision core: none of its files reads files or a database', () => {
    // What does I/O lives in policy-library (files, publication, versions) and decision-log (its table).
    const io = new Set([
      'fs',
      'fs/promises',
      'node:fs',
      'node:fs/promises',
      'kysely',
      'pg',
      'better-sqlite3',
    ]);
    const dir = `${repo}src/policy/`;
    const files = readdirSync(dir).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));
    expect(files).toContain('authorize.ts');
    const found = files.flatMap((name) =>
      ts
        .preProcessFile(readFileSync(`${dir}${name}`, 'utf8'), true, true)
        .importedFiles.filter((imported) => io.has(imported.fileName))
        .map((imported) => `${name} imports ${imported.fileName}`),
    );
    expect(found).toEqual([]);
  });
});
