import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type EmulatorProcess, ROOT, startEmulator } from './processes.ts';

// The gateway as a library: built with `npm run build`, imported by its package name through
// package.json "exports", type-checked against the emitted .d.ts, and mounted in a host Hono app.

const BIN = join(ROOT, 'node_modules/.bin');
let emulator: EmulatorProcess;

beforeAll(async () => {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.stop();
});

it('type-checks a host app against the published types', () => {
  const check = spawnSync(
    join(BIN, 'tsc'),
    [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      '--skipLibCheck',
      'test/e2e/library/consumer.ts',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  expect(check.status, check.stdout + check.stderr).toBe(0);
});

it('serves chat completions when mounted under a host app, next to its own routes', async () => {
  const key = await emulator.admin('service-accounts', { body: {} });
  const run = spawnSync(join(BIN, 'node'), ['test/e2e/library/consumer.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, KEY_JSON: JSON.stringify(key), EMULATOR_URL: emulator.url },
  });
  expect(run.status, run.stderr).toBe(0);
  const lastLine = run.stdout.trim().split('\n').at(-1) ?? '';
  const result = JSON.parse(lastLine) as Record<string, unknown>;
  expect(result.home).toBe('my own app');
  expect(result.status).toBe(200);
  expect(result.answer).toContain('Hello from a host app');
  expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(result.refused).toBe(401);
});
