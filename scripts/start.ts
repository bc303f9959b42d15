/**
 * `npm start`: the gateway under `wrangler dev` on http://127.0.0.1:8787.
 *
 * With a GOOGLE_SERVICE_ACCOUNT_KEY in .dev.vars it talks to Google. Without one it runs a demo:
 * the local Vertex emulator plays Google, with a freshly generated service account, and clients
 * use the key `local-dev-key`. Nothing here is needed in production.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/server.ts';

const ROOT = resolve(import.meta.dirname, '..');
const PORT = process.env.PORT ?? '8787';
const EMULATOR_PORT = Number(process.env.EMULATOR_PORT ?? 8788);
export const DEMO_CLIENT_KEY = 'local-dev-key';

function hasConfiguredKey(): boolean {
  const file = join(ROOT, '.dev.vars');
  return (
    existsSync(file) && /^\s*GOOGLE_SERVICE_ACCOUNT_KEY\s*=\s*\S/m.test(readFileSync(file, 'utf8'))
  );
}

function runWrangler(extraArgs: string[], cleanup: () => Promise<void> | void): void {
  const wrangler = spawn(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['dev', '--ip', '127.0.0.1', '--port', PORT, ...extraArgs],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  const stop = () => wrangler.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  wrangler.once('exit', async (code) => {
    await cleanup();
    process.exit(code ?? 0);
  });
}

if (hasConfiguredKey()) {
  console.log('Using GOOGLE_SERVICE_ACCOUNT_KEY from .dev.vars: requests go to Google Vertex AI.');
  runWrangler([], () => {});
} else {
  // A short pause between chunks, so the demo streams the way a model does.
  const emulator = await startEmulator({ port: EMULATOR_PORT, chunkDelayMs: 40 });
  const key = emulator.createServiceAccount();
  // The generated key goes to wrangler through a private temporary dotenv file, never argv.
  const dir = mkdtempSync(join(tmpdir(), 'vertex-gateway-demo-'));
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
      '  To use Google: cp .dev.vars.example .dev.vars, put your service-account key in it,',
      '  and run npm start again.',
      '',
    ].join('\n'),
  );
  runWrangler(['--env-file', envFile], async () => {
    rmSync(dir, { recursive: true, force: true });
    await emulator.close();
  });
}
