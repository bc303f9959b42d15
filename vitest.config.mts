import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// Three suites, run one after another by `npm test`: unit (Node), workers (inside workerd, through
// the real Worker entry), and e2e (real gateway processes on both runtimes, driven by `openai`).
export default defineConfig({
  test: {
    // The gateway writes a log line per request; tests that check them read console.log directly.
    onConsoleLog: (log) => !log.startsWith('{"level":"info","message":"request"'),
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'emulator/**/*.test.ts'],
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                GOOGLE_SERVICE_ACCOUNT_KEY: inject<string>('serviceAccountKey'),
                GATEWAY_API_KEYS: 'workers-test-key',
                ALLOW_TOKEN_PASSTHROUGH: 'true',
                VERTEX_BASE_URL: inject<string>('emulatorUrl'),
              },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/workers/**/*.test.ts'],
          globalSetup: ['test/workers/global-setup.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
