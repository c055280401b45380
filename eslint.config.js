import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { moduleBoundaries, readModuleTable } from './scripts/module-boundaries.js';

export default tseslint.config(
  { ignores: ['**/dist/', '**/node_modules/', 'artefacts/', '.gatehouse/', 'coverage/', '.scratch*/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  moduleBoundaries(readModuleTable(new URL('./src/modules.json', import.meta.url))),
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
