// ESLint flat config: type-aware promise rules everywhere, and a purity fence around machines/.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Node built-ins, bare or with the `node:` scheme, and their subpaths (fs, node:fs, fs/promises, ...). */
const nodeBuiltins = `node:|(?:${builtinModules.map(escape).join('|')})(?:/|$)`;

/** Vendor SDKs and I/O libraries that only src/ may touch, and their subpaths. */
const vendorSdks = `(?:${[
  'pg(?:-[\\w-]+)?',
  'drizzle-orm',
  '@electric-sql/[\\w-]+',
  'openai',
  'replicate',
  '@nats-io/[\\w-]+',
  'bottleneck',
  'ioredis',
  'redis',
  'pino(?:-[\\w-]+)?',
  'zod',
].join('|')})(?:/|$)`;

const machinesMessage = 'machines/ is pure: it may import only xstate and other files in machines/.';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'drizzle/**',
      'bench/results/**',
      '.inkwell/**',
      '.inkwell*/**',
      '.inkwell*',
      'coverage/**',
      'dist/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked.map((config) => ({ ...config, files: ['**/*.ts'] })),
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // XState's generic typings make these fire on correct code; tsc strict already guards the real cases.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // A file of the runtime or the machine stays small enough to read in one sitting (issue 18).
    files: ['src/**/*.ts', 'machines/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 300 }] },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', URL: 'readonly' },
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // vi.fn() and expect(...).rejects patterns trip these without being bugs.
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['machines/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/src', '**/src/**'],
              message: `${machinesMessage} (src/ depends on machines/, not the reverse)`,
            },
            { regex: `^(?:${nodeBuiltins})`, message: `${machinesMessage} (Node built-in)` },
            { regex: `^${vendorSdks}`, message: `${machinesMessage} (vendor SDK)` },
            // Anything else that is neither relative nor xstate (and its subpaths) is out too.
            { regex: `^(?!xstate(?:/|$)|\\.|${nodeBuiltins}|${vendorSdks})`, message: machinesMessage },
          ],
        },
      ],
    },
  },
  prettier,
);
