// One lint config for the whole monorepo (typescript-eslint, type-aware rules off for speed).
// It also holds the architecture's walls: which @opsplane packages each package may import
// (dependencies flow one way, only through each package's index), and the server's layers
// (HTTP edge → services → storage → config/security), so an upward import fails the gate.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** What each package's own code (src/, bench/) may import of the other @opsplane packages. */
const ALLOWED = {
  models: [],
  kit: ['models'],
  // The built-in CA: imports no @opsplane package, so that every process may use it.
  pki: [],
  api: ['models', 'kit'],
  platform: ['models', 'kit'],
  deploy: ['models', 'kit'],
  fleet: ['models', 'kit', 'pki'],
  agent: ['models', 'kit', 'pki'],
  controller: ['models', 'kit', 'platform', 'pki'],
  server: ['models', 'kit', 'platform', 'api', 'deploy', 'pki'],
  cli: ['models', 'kit', 'pki', 'platform', 'api', 'deploy', 'fleet', 'agent', 'controller', 'server'],
  // The browser code talks HTTP only: types from the contract, nothing at run time.
  web: ['api'],
  'test-support': ['models', 'kit', 'pki', 'fleet'],
};
const PACKAGES = [...Object.keys(ALLOWED)];

const deepImport = {
  group: ['@opsplane/*/*'],
  message: 'Import a package through its index only (@opsplane/<name>).',
};

function packageRule(pkg, extra = []) {
  const banned = PACKAGES.filter((p) => p !== pkg && !ALLOWED[pkg].includes(p)).map((p) => `@opsplane/${p}`);
  const paths = banned.map((name) => ({
    name,
    message: `${pkg} may import only ${ALLOWED[pkg].map((p) => '@opsplane/' + p).join(', ') || 'no @opsplane package'} (see the package README).`,
  }));
  return [
    'error',
    {
      paths,
      patterns: [deepImport, ...extra],
    },
  ];
}

/** The server's layers: what each directory may not reach up to. */
const SERVER_LAYERS = [
  {
    files: ['packages/server/src/storage/**/*.ts'],
    extra: [
      {
        group: ['**/services/**', '**/http/**', '**/server.js', '@opsplane/api'],
        message: 'storage returns rows: it imports neither services, the HTTP edge nor the API contract.',
      },
    ],
  },
  {
    files: ['packages/server/src/services/**/*.ts'],
    extra: [{ group: ['**/http/**', '**/server.js'], message: 'services do not know the HTTP edge.' }],
  },
  {
    files: ['packages/server/src/security/**/*.ts', 'packages/server/src/config.ts'],
    extra: [
      {
        group: ['**/services/**', '**/http/**', '**/storage/**', '**/server.js'],
        message: 'config and security are the bottom layer of the server.',
      },
    ],
  },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'data/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        TextEncoder: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        setImmediate: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  // Package walls (product code; tests may reach for test-support and what they exercise).
  ...PACKAGES.map((pkg) => ({
    files: [`packages/${pkg}/src/**/*.ts`],
    ignores: SERVER_LAYERS.flatMap((l) => (pkg === 'server' ? l.files : [])),
    rules: { '@typescript-eslint/no-restricted-imports': packageRule(pkg) },
  })),
  ...SERVER_LAYERS.map((l) => ({
    files: l.files,
    rules: { '@typescript-eslint/no-restricted-imports': packageRule('server', l.extra) },
  })),
  // The web UI imports types only: its bundle carries no schema library.
  {
    files: ['packages/web/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: PACKAGES.map((p) => ({
            name: `@opsplane/${p}`,
            allowTypeImports: true,
            message: 'The web UI may import types only (import type …).',
          })),
          patterns: [deepImport],
        },
      ],
    },
  },
  {
    files: ['packages/*/test/**/*.ts', 'packages/*/bench/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [deepImport] }] },
  },
);
