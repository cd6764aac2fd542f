// ESLint (flat config) with typescript-eslint's type-checked rules; Prettier owns formatting
// (eslint-config-prettier, last, switches off every rule that would fight it).
// `npm run lint` runs this and `prettier --check .`; `npm run lint:fix` fixes what both can.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** For code whose `any` is its input's nature (results read back, free-form JSON): no no-unsafe-*. */
const unsafeAnyAllowed = {
  '@typescript-eslint/no-unsafe-member-access': 'off',
  '@typescript-eslint/no-unsafe-assignment': 'off',
  '@typescript-eslint/no-unsafe-argument': 'off',
  '@typescript-eslint/no-unsafe-return': 'off',
  '@typescript-eslint/no-unsafe-call': 'off',
};

export default defineConfig(
  {
    ignores: [
      '**/node_modules/',
      '**/dist/',
      'src/generated/',
      'test/generated/',
      'apps/live/src/generated/',
      'bench/.build/',
      'bench/results/',
      'coverage/',
      '.data/',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      // Each file is checked with the nearest tsconfig.json that includes it: the root one for
      // src, test, bench, scripts, examples; packages/client's own for its src.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Bracket access is this codebase's mark of an index signature (env, extensions, JSON):
      // dot-notation still flags brackets on declared properties.
      '@typescript-eslint/dot-notation': ['error', { allowIndexSignaturePropertyAccess: true }],
      // Memory stores implement async interfaces with async methods that need no await, on
      // purpose: a synchronous throw becomes a rejection, as in the Redis implementation.
      '@typescript-eslint/require-await': 'off',
      // Objects here are built by closures, not classes: the rule cannot tell a method
      // shorthand without `this` (stores, loggers, Yoga's hook payloads) from one that needs it.
      '@typescript-eslint/unbound-method': 'off',
      // Deliberate no-ops (a memory store's close, a default log sink).
      '@typescript-eslint/no-empty-function': 'off',
      // graphql-js's OperationTypeNode and Kind are string enums whose values are the spec's
      // names; comparing with 'subscription' is graphql-js's documented use (and v17's type).
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      // `_`-prefixed names are deliberately unused: rest-sibling omission, loop counters.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // An empty header, name or address falls back with `||` on purpose.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true } }],
      // `if (w) (failure ? w.reject(failure) : w.resolve(done))`: a ternary picking the call.
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true }],
      // A rejection passes on what was thrown (unknown) as it came, like only-throw-error allows.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `let x; const lifecycle = new Lifecycle(() => x?.dispose()); x = create(...)`: the
      // closure reads x before its one assignment, so it cannot be a const declared after it.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Pothos's plugin types are merged into `declare global { namespace PothosSchemaTypes }`.
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
    },
  },
  {
    files: ['test/**/*.ts', 'packages/client/test/**/*.ts'],
    rules: {
      // Tests read IteratorResult<T, any> (`(await it.next()).value.seq`), Yoga's any-typed
      // envelop and parsed JSON, then assert the shape: the assertion is the type check.
      ...unsafeAnyAllowed,
      // An async listener that throws is an unhandled rejection, which vitest reports as a failure.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    // Short client snippets for the README (shown verbatim): they parse untyped JSON as a
    // reader's app would. The stock-Yoga reference follows Yoga's docs over envelop's any-typed API.
    files: ['examples/**/*.ts', 'bench/reference/stock-yoga.ts'],
    rules: {
      ...unsafeAnyAllowed,
    },
  },
  {
    // The suite's report reads free-form result JSON (Record<string, any>) of many shapes.
    files: ['bench/suite.ts'],
    rules: {
      '@typescript-eslint/dot-notation': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      ...unsafeAnyAllowed,
    },
  },
  {
    // The kit's tests are outside packages/client/tsconfig.json (src only, no Node types): they
    // are typed by tsconfig.test.json, which the project service does not look for.
    files: ['packages/client/test/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: false, project: './packages/client/tsconfig.test.json' },
    },
  },
  {
    // React calls event handlers and ignores what they return; the apps' async handlers catch and
    // show their own errors, so a handler returning a promise is not a lost rejection there.
    files: ['apps/live/src/**/*.tsx'],
    rules: { '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }] },
  },
  {
    // The reference apps' server scripts are typed by their own tsconfig (the root one's options,
    // its own include), which the project service does not look for.
    files: ['apps/live/server/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: false, project: './apps/live/tsconfig.server.json' },
    },
  },
  {
    // Plain JS (this file, scripts/*.mjs) is in no tsconfig: no type information.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
);
