/**
 * The module table (src/modules.json) as an ESLint rule: import/no-restricted-paths zones under which a
 * module's files import only their own folder and the index.ts of the modules the table says they
 * depend on. Two messages, so a failure says which rule was broken: a deep import into another
 * module's files, or an arrow the table does not draw.
 */
import { readFileSync } from 'node:fs';
import importPlugin from 'eslint-plugin-import';

/** The table kept in the repository beside the code it describes. */
export function readModuleTable(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** import/no-restricted-paths zones for a table whose modules are folders of `sourceDir` (relative). */
export function boundaryZones(table, sourceDir = './src') {
  const names = Object.keys(table.modules);
  return names.flatMap((name) => {
    const allowed = new Set(table.modules[name].dependsOn);
    // Most modules see only index.ts; one may be granted more faces (the database: migrations.ts).
    const faces = (table.modules[name].faces ?? ['index.ts']).map((face) => `./${face}`);
    return names
      .filter((other) => other !== name)
      .map((other) =>
        allowed.has(other)
          ? {
              target: `${sourceDir}/${name}`,
              from: `${sourceDir}/${other}`,
              except: faces,
              message: `deep import: ${name} may use ${other} only through ${faces.map((f) => `${other}/${f.slice(2)}`).join(' or ')} (its public face)`,
            }
          : {
              target: `${sourceDir}/${name}`,
              from: `${sourceDir}/${other}`,
              message: `${name} -> ${other} is not an arrow of the module table (src/modules.json)`,
            },
      );
  });
}

/** The flat-config block that applies the zones to the source files (tests are exempt), resolving TypeScript. */
export function moduleBoundaries(table, { sourceDir = './src', files = ['src/**/*.ts'], basePath } = {}) {
  return {
    files,
    ignores: ['**/*.test.ts'],
    plugins: { import: importPlugin },
    settings: {
      'import/resolver': { typescript: { alwaysTryTypes: true } },
      'import/extensions': ['.ts', '.js'],
      'import/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import/no-restricted-paths': [
        'error',
        { zones: boundaryZones(table, sourceDir), ...(basePath !== undefined && { basePath }) },
      ],
    },
  };
}
