/**
 * The legs of the benchmark: how each system under test is started, where it listens, what a
 * client sends it, and which process holds its memory. Every server binds 127.0.0.1 only, and
 * every one is a single process with a single JavaScript thread, so the legs compete for the
 * machine's cores in the same way.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { denoServeArgs } from '../test/support/deno-serve-args.ts';
import type { Bundle } from './bundle.ts';
import { type EmulatorProcess, LOCATION, PROJECT } from './emulator.ts';
import { BIN, type Child, freePort, ROOT, spawnChild } from './processes.ts';
import { readWranglerToml, workerdConfig } from './workerd-config.ts';

export const LEG_IDS = [
  'direct',
  'floor-workerd',
  'gateway-workerd',
  'floor-deno',
  'gateway-deno',
  'portkey',
] as const;
export type LegId = (typeof LEG_IDS)[number];

export type Runtime = 'workerd' | 'deno' | 'node';

export interface LegInfo {
  label: string;
  /** The runtime that serves the leg; null for the emulator itself. */
  runtime: Runtime | null;
}

export const LEG_INFO: Record<LegId, LegInfo> = {
  direct: { label: 'direct (emulator)', runtime: null },
  'floor-workerd': { label: 'floor, workerd', runtime: 'workerd' },
  'gateway-workerd': { label: 'gateway, workerd', runtime: 'workerd' },
  'floor-deno': { label: 'floor, Deno', runtime: 'deno' },
  'gateway-deno': { label: 'gateway, Deno', runtime: 'deno' },
  portkey: { label: 'Portkey (Node)', runtime: 'node' },
};

/** The key clients of the gateway present; the floors ignore it but receive the same headers. */
export const CLIENT_KEY = 'bench-client-key';

/** Where a client sends a chat request for a leg, and with which headers. */
export interface Target {
  url: string;
  headers: Record<string, string>;
  /** The process that serves it, whose CPU time is measured; absent or null for `direct`. */
  pid?: number | null;
}

export interface RunningLeg extends Target {
  id: LegId;
  /** The process whose RSS is the leg's memory; null for `direct`. */
  pid: number | null;
  /** From spawn to accepting requests, in ms (0 for `direct`). */
  startupMs: number;
  /** What the process printed recently (its logs), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

/** What every leg is started from; prepared once per benchmark run. */
export interface LegContext {
  emulator: EmulatorProcess;
  /**
   * The `wrangler deploy --dry-run` output; workerd configs for the gateway go beside it. Absent
   * when every workerd gateway leg runs another checkout's bundle (bench:compare).
   */
  bundle?: Bundle;
  /** A scratch directory for the floor's JavaScript and its workerd configs. */
  workdir: string;
}

const GATEWAY_ROUTE = '/v1/chat/completions';

export interface StartOptions {
  /** Opens the runtime's V8 inspector on this loopback port (for CPU profiles; not Portkey). */
  inspectorPort?: number;
  /** Settings added to the gateway's own (gateway legs only), e.g. GOOGLE_AUTH_MODE. */
  gatewaySettings?: Record<string, string>;
  /** Runs another checkout of the gateway instead of this one (gateway legs only). */
  checkout?: Checkout;
}

/**
 * Another checkout of the gateway, for `npm run bench:compare`: its own bundle and wrangler.toml
 * on workerd, its own source and deno.json on Deno. The floors stay this checkout's.
 */
export interface Checkout {
  dir: string;
  /** Its `wrangler deploy --dry-run` output; needed for the workerd leg. */
  bundle?: Bundle;
}

export async function startLeg(
  id: LegId,
  context: LegContext,
  options: StartOptions = {},
): Promise<RunningLeg> {
  const { emulator } = context;
  const inspect = options.inspectorPort;
  const gateway = { ...gatewayEnv(emulator), ...options.gatewaySettings };
  switch (id) {
    case 'direct':
      return {
        id,
        url: emulator.chatUrl,
        headers: { authorization: `Bearer ${emulator.accessToken}` },
        pid: null,
        startupMs: 0,
        output: () => '',
        stop: async () => {},
      };
    case 'gateway-workerd': {
      const { checkout } = options;
      const bundle = checkout ? checkout.bundle : context.bundle;
      if (!bundle) throw new Error(`no bundle built for ${checkout?.dir ?? 'this checkout'}`);
      return startWorkerd(id, bundle.file, gateway, inspect, checkout?.dir);
    }
    case 'floor-workerd':
      return startWorkerd(id, floorModule(context.workdir), floorEnv(emulator), inspect);
    case 'gateway-deno':
      return startDeno(id, 'src/runtime/deno.ts', gateway, inspect, options.checkout?.dir);
    case 'floor-deno':
      return startDeno(id, 'bench/floor-worker.ts', floorEnv(emulator), inspect);
    case 'portkey':
      return startPortkey(emulator);
  }
}

/** The gateway's configuration, as an operator would set it (names from src/config.ts). */
function gatewayEnv(emulator: EmulatorProcess): Record<string, string> {
  return {
    GOOGLE_SERVICE_ACCOUNT_KEY: emulator.serviceAccountKeyBase64,
    GATEWAY_API_KEYS: CLIENT_KEY,
    VERTEX_PROJECT: PROJECT,
    VERTEX_LOCATION: LOCATION,
    VERTEX_BASE_URL: emulator.url,
  };
}

function floorEnv(emulator: EmulatorProcess): Record<string, string> {
  return { FLOOR_UPSTREAM_URL: emulator.chatUrl, FLOOR_TOKEN: emulator.accessToken };
}

/** workerd runs JavaScript only: the floor's types are stripped (it uses erasable syntax only). */
function floorModule(workdir: string): string {
  const file = join(workdir, 'floor-worker.js');
  const source = readFileSync(join(ROOT, 'bench/floor-worker.ts'), 'utf8');
  // Node flags stripTypeScriptTypes as experimental; its warning would only clutter the output.
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    writeFileSync(file, stripTypeScriptTypes(source));
  } finally {
    process.emitWarning = emitWarning;
  }
  return file;
}

function running(id: LegId, child: Child, port: number, started: number): RunningLeg {
  return {
    id,
    url: `http://127.0.0.1:${port}${GATEWAY_ROUTE}`,
    headers: { authorization: `Bearer ${CLIENT_KEY}` },
    pid: child.pid,
    startupMs: performance.now() - started,
    output: () => child.output(),
    stop: () => child.stop(),
  };
}

/**
 * `workerd serve config.capnp`, the runtime Cloudflare runs, without `wrangler dev`'s proxy and
 * second workerd in the request path. The config sits next to the module it embeds.
 */
async function startWorkerd(
  id: LegId,
  moduleFile: string,
  env: Record<string, string>,
  inspectorPort: number | undefined,
  checkout: string = ROOT,
): Promise<RunningLeg> {
  const settings = readWranglerToml(join(checkout, 'wrangler.toml'));
  const port = await freePort();
  const moduleName = moduleFile.slice(moduleFile.lastIndexOf('/') + 1);
  const dir = moduleFile.slice(0, moduleFile.lastIndexOf('/'));
  const configFile = join(dir, `${id}-${port}.capnp`);
  writeFileSync(
    configFile,
    workerdConfig({ moduleName, port, settings, bindings: { ...settings.vars, ...env } }),
    { mode: 0o600 },
  );
  const started = performance.now();
  const args = ['serve', configFile];
  if (inspectorPort !== undefined) args.push(`--inspector-addr=127.0.0.1:${inspectorPort}`);
  const { child } = await spawnChild(join(BIN, 'workerd'), args, { readyPort: port });
  return running(id, child, port, started);
}

/**
 * `npm run serve:deno` without npm: the same `deno serve` command line (read from package.json,
 * so the flags cannot drift), started directly so the leg's process is Deno itself.
 */
async function startDeno(
  id: LegId,
  entry: string,
  env: Record<string, string>,
  inspectorPort: number | undefined,
  checkout?: string,
): Promise<RunningLeg> {
  const port = await freePort();
  const args = denoServeArgs(checkout ? join(checkout, entry) : entry, port);
  if (inspectorPort !== undefined) args.splice(1, 0, `--inspect=127.0.0.1:${inspectorPort}`);
  // The checkout's own import map, so it runs with the dependency versions it declares.
  if (checkout) args.splice(1, 0, `--config=${join(checkout, 'deno.json')}`);
  const started = performance.now();
  const { child } = await spawnChild(join(BIN, 'deno'), args, {
    env,
    readyLine: /Listening on http:\/\/127\.0\.0\.1:\d+/,
  });
  return running(id, child, port, started);
}

/**
 * Portkey's open-source gateway as a plain OpenAI passthrough: `x-portkey-provider: openai` and a
 * custom host, to which it appends `/chat/completions`. The preload binds it to loopback and
 * works around its streaming bug (see portkey-preload.ts).
 */
async function startPortkey(emulator: EmulatorProcess): Promise<RunningLeg> {
  const port = await freePort();
  const started = performance.now();
  const { child } = await spawnChild(
    join(BIN, 'node'),
    [
      '--import',
      join(ROOT, 'bench/portkey-preload.ts'),
      join(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js'),
      `--port=${port}`,
      '--headless',
    ],
    { readyLine: /Ready for connections/ },
  );
  return {
    id: 'portkey',
    url: `http://127.0.0.1:${port}${GATEWAY_ROUTE}`,
    headers: {
      authorization: `Bearer ${emulator.accessToken}`,
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': emulator.openaiBaseUrl,
    },
    pid: child.pid,
    startupMs: performance.now() - started,
    output: () => child.output(),
    stop: () => child.stop(),
  };
}
