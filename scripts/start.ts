/**
 * `npm start`: the gateway under `wrangler dev` on http://127.0.0.1:8787.
 *
 * With a GOOGLE_SERVICE_ACCOUNT_KEY in .dev.vars it talks to Google. Without one it runs a demo:
 * the local Vertex emulator plays Google, with a freshly generated service account, and clients
 * use the key `local-dev-key`. Nothing here is needed in production.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Emulator, startEmulator } from '../emulator/server.ts';
import { devVarsHaveServiceAccountKey } from './dev-vars.ts';

const ROOT = resolve(import.meta.dirname, '..');
const PORT = process.env.PORT ?? '8787';
export const DEMO_CLIENT_KEY = 'local-dev-key';

function runWrangler(extraArgs: string[], cleanup: () => Promise<void> | void): void {
  const wrangler = spawn(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['dev', '--ip', '127.0.0.1', '--port', PORT, ...extraArgs],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  const stop = () => wrangler.kill('SIGTERM');
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, stop);
  wrangler.once('error', async (error) => {
    console.error(`npm start: could not run wrangler (${error.message}). Run npm ci first.`);
    await cleanup();
    process.exit(1);
  });
  wrangler.once('exit', async (code, signal) => {
    await cleanup();
    process.exit(code ?? (signal ? 1 : 0));
  });
}

/** The demo's emulator on EMULATOR_PORT if set, else on 8788, or any free port if that is taken. */
async function demoEmulator(): Promise<Emulator> {
  const chosen = process.env.EMULATOR_PORT;
  try {
    return await startEmulator({ port: Number(chosen ?? 8788), chunkDelayMs: 40 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    if (chosen !== undefined) {
      console.error(`npm start: EMULATOR_PORT ${chosen} is already in use.`);
      process.exit(1);
    }
    return startEmulator({ port: 0, chunkDelayMs: 40 });
  }
}

if (devVarsHaveServiceAccountKey(join(ROOT, '.dev.vars'))) {
  console.log('Using GOOGLE_SERVICE_ACCOUNT_KEY from .dev.vars: requests go to Google Vertex AI.');
  runWrangler([], () => {});
} else {
  // A short pause between chunks, so the demo streams the way a model does.
  const emulator = await demoEmulator();
  const key = emulator.createServiceAccount();
  // The generated key goes to wrangler through a private temporary dotenv file, never argv. It
  // goes when the demo ends, however it ends.
  const dir = mkdtempSync(join(tmpdir(), 'vertex-gateway-demo-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const envFile = join(dir, '.env');
  writeFileSync(
    envFile,
    [
      `GOOGLE_SERVICE_ACCOUNT_KEY=${Buffer.from(JSON.stringify(key)).toString('base64')}`,
      `GATEWAY_API_KEYS=${DEMO_CLIENT_KEY}`,
      `VERTEX_BASE_URL=${emulator.url}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  console.log(
    [
      '',
      '  DEMO MODE: no GOOGLE_SERVICE_ACCOUNT_KEY in .dev.vars, so answers come from the local',
      `  Vertex emulator (${emulator.url}), not from Google.`,
      '',
      `    base URL    http://127.0.0.1:${PORT}/v1`,
      `    API key     ${DEMO_CLIENT_KEY}`,
      '',
      '  To use Google: cp .dev.vars.example .dev.vars, put your service-account key and a',
      '  client key of your own (GATEWAY_API_KEYS, e.g. openssl rand -hex 32) in it, and run',
      '  npm start again.',
      '',
    ].join('\n'),
  );
  runWrangler(['--env-file', envFile], async () => {
    rmSync(dir, { recursive: true, force: true });
    await emulator.close();
  });
}
