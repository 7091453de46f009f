// ESLint for the TypeScript sources and tests and the plain-JS scripts (CLIs, pipelines, benches): the
// recommended rules of ESLint and typescript-eslint (syntax only, not the type-checked set). Today's code needs
// no exceptions; `_`-prefixed names are allowed unused, for parameters kept for their position.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', 'build/', 'bundle/', 'runs/', 'out/', 'datasets/build/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
