import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { EmulatorStats, RecordedChatRequest } from '../../emulator/state.ts';
import { denoServeArgs } from '../support/deno-serve-args.ts';
import { freePort } from '../support/free-port.ts';

/**
 * Starts the real processes the e2e suite drives: the emulator (`npm run emulator`), the gateway
 * under `wrangler dev` (workerd) and under `npm run serve:deno`, the way the README runs them.
 */

export const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'node_modules/.bin');

export interface RunningProcess {
  url: string;
  /** Everything the process printed, for assertions that secrets never appear in logs. */
  output(): string;
  stop(): Promise<void>;
  /** wrangler dev only: where it keeps local state (Durable Object storage among it). */
  stateDir?: string;
}

export { freePort };

export function launch(
  command: string,
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
  timeoutMs = 90_000,
): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  // Its own process group, so stop() also ends the children (workerd, deno) it starts.
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...inheritedEnv(), WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      kill(child);
      fail(new Error(`${command} ${args.join(' ')} was not ready in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        done({ child, match, output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${command} exited with ${code} before it was ready:\n${output}`));
    });
  });
}

// The gateway's own variables come only from the test, never from the machine running it.
const GATEWAY_VARIABLE = /^(GOOGLE_|GATEWAY_|VERTEX_|ALLOW_TOKEN_)/;

function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !GATEWAY_VARIABLE.test(entry[0]),
    ),
  );
}

function kill(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  kill(child);
  const forced = setTimeout(() => {
    if (child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }
  }, 5_000);
  await exited;
  clearTimeout(forced);
}

/** What the emulator recorded of a request the gateway forwarded; the body as JSON. */
export type ForwardedRequest = RecordedChatRequest & { body: Record<string, unknown> };

export interface EmulatorProcess extends RunningProcess {
  admin<T>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  stats(): Promise<EmulatorStats>;
  requests(): Promise<ForwardedRequest[]>;
}

export async function startEmulator(): Promise<EmulatorProcess> {
  const { child, match, output } = await launch(
    join(BIN, 'node'),
    ['emulator/main.ts', '--port', '0'],
    /listening on (http:\/\/\S+)/,
  );
  const url = match[1] as string;
  const emulator: EmulatorProcess = {
    url,
    output,
    stop: () => stopProcess(child),
    stats: () => emulator.admin('stats'),
    requests: () => emulator.admin('requests'),
    async admin<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
      const response = await fetch(`${url}/__emulator/${path}`, {
        method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
        headers: { 'content-type': 'application/json' },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      if (!response.ok)
        throw new Error(`emulator ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    },
  };
  return emulator;
}

export type Runtime = 'workerd' | 'deno';

/** `npx wrangler dev --ip 127.0.0.1 --port P --env-file F`, as the README documents. */
async function startWorkerd(env: Record<string, string>): Promise<RunningProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-e2e-'));
  const envFile = join(dir, '.env');
  const lines = Object.entries(env).map(([name, value]) => {
    // dotenv has no escapes: single quotes keep double quotes (JSON) literal; anything with a
    // single quote, newline or backslash must be base64-encoded by the caller.
    if (/['\n\\]/.test(value)) throw new Error(`${name} cannot be written to a dotenv file as is`);
    return value.includes('"') ? `${name}='${value}'` : `${name}=${value}`;
  });
  writeFileSync(envFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  const port = await freePort();
  // The dotenv file holds a service-account key: removed even when wrangler fails to start.
  const started = launch(
    join(BIN, 'wrangler'),
    [
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--env-file',
      envFile,
      '--inspector-port',
      String(await freePort()),
      '--persist-to',
      join(dir, 'state'),
      '--log-level',
      // 'log' and not 'info': a worker's console.log is printed at level 'log'.
      'log',
    ],
    /Ready on http:\/\/127\.0\.0\.1:\d+/,
  ).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  const { child, output } = await started;
  return {
    url: `http://127.0.0.1:${port}`,
    output,
    stateDir: join(dir, 'state'),
    async stop() {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `PORT=P npm run serve:deno`, with the configuration in the environment. */
async function startDeno(env: Record<string, string>): Promise<RunningProcess> {
  const port = await freePort();
  const { child, output } = await launch(
    'npm',
    ['run', 'serve:deno'],
    /Listening on http:\/\/127\.0\.0\.1:\d+/,
    {
      ...env,
      PORT: String(port),
    },
  );
  return { url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(child) };
}

/**
 * `deno serve` with Deno KV switched on and the rate-limit counts in `kvPath`, as the README
 * documents for local processes that share limits (Deno Deploy needs no flag).
 */
export async function startDenoWithKv(
  env: Record<string, string>,
  kvPath: string,
): Promise<RunningProcess> {
  const port = await freePort();
  // `npm run serve:deno`'s flags, plus Deno KV and access to its file only.
  const args = denoServeArgs('src/runtime/deno.ts', port);
  args.splice(1, 0, '--unstable-kv', `--allow-read=${kvPath}`, `--allow-write=${kvPath}`);
  const { child, output } = await launch(
    join(BIN, 'deno'),
    args,
    /Listening on http:\/\/127\.0\.0\.1:\d+/,
    { ...env, DENO_KV_DEFAULT_PATH: kvPath },
  );
  return { url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(child) };
}

export function startGateway(
  runtime: Runtime,
  env: Record<string, string>,
): Promise<RunningProcess> {
  return runtime === 'workerd' ? startWorkerd(env) : startDeno(env);
}

/**
 * One emulator process for a whole test file, with one registered service account: started
 * before the file's tests and stopped after them. Read its fields inside hooks and tests.
 */
export function emulatorForFile(account: { projectId?: string } = {}): {
  readonly emulator: EmulatorProcess;
  readonly serviceAccountKey: Record<string, string>;
  /** The settings that point a gateway at this emulator with the account and a client key. */
  gatewayEnv(clientKey: string, extra?: Record<string, string>): Record<string, string>;
} {
  let emulator: EmulatorProcess | undefined;
  let key: Record<string, string> | undefined;
  beforeAll(async () => {
    emulator = await startEmulator();
    key = await emulator.admin('service-accounts', { body: account });
  });
  afterAll(async () => {
    await emulator?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the emulator starts in beforeAll');
    return value;
  };
  return {
    get emulator() {
      return started(emulator);
    },
    get serviceAccountKey() {
      return started(key);
    },
    gatewayEnv(clientKey, extra = {}) {
      return {
        // Base64, which a dotenv file (workerd) carries as well as the environment (Deno).
        GOOGLE_SERVICE_ACCOUNT_KEY: Buffer.from(JSON.stringify(started(key))).toString('base64'),
        GATEWAY_API_KEYS: clientKey,
        VERTEX_BASE_URL: started(emulator).url,
        ...extra,
      };
    },
  };
}

/** Polls the emulator's stats until `done` holds or `attempts` polls 100 ms apart have passed. */
export async function waitForStats(
  emulator: EmulatorProcess,
  done: (stats: EmulatorStats) => boolean,
  attempts = 30,
): Promise<EmulatorStats> {
  let current = await emulator.stats();
  for (let i = 0; i < attempts && !done(current); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    current = await emulator.stats();
  }
  return current;
}
