/**
 * `npm run bench:soak`: does the gateway give memory back after many requests of the kinds it
 * answers (17 of them, broken and refused ones included)? `npm run bench` measures memory with streams held open; this measures what stays once
 * they have closed. Session 7 found a workerd leak this way (streams Vertex breaks off kept their
 * whole request alive, about 13 KB each, without end; see bench/README.md), with a throwaway
 * script that this one replaces, so the fix can be checked again.
 *
 *   npm run bench:soak -- [--runtime workerd,deno] [--rounds 6] [--requests 8000]
 *                         [--connections 32] [--kinds all | broken,json,...]
 *
 * Each round sends `--requests` requests at `--connections` at once, the kinds taken in turn,
 * waits until the emulator has no stream open, and reads the RSS of the runtime process. The
 * emulator's tokens live 20 s, so the gateway refreshes its token throughout. A leak shows as RSS
 * that climbs round over round; a runtime settling shows as a climb that levels off. It is a
 * benchmark, not a test: it prints what it saw and fails only when an answer is not the one
 * expected or an upstream stream stays open (exit 1), since the memory figures would then mean
 * little.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Directives } from '../emulator/directives.ts';
import { buildBundle } from './bundle.ts';
import { LOCATION, PROJECT, startEmulator } from './emulator.ts';
import { type LegContext, type LegId, type RunningLeg, startLeg } from './legs.ts';
import { CHAT_BODY, waitForUpstreamStreams } from './load.ts';
import { installCleanup, killAll, onCleanup, sleep, treeRssBytes } from './processes.ts';

/** Small, so that the over-limit kind costs the load generator little to send. */
const MAX_REQUEST_BYTES = 64 * 1024;
const TOKEN_TTL_SECONDS = 20;
/** Short, so that the timeout kinds cost half a second each rather than the default minutes. */
const TIMEOUT_MS = 500;
/** Team keys (GATEWAY_KEYS): one held to one request a minute, one held to another model. */
const LIMITED_KEY = 'soak-team-limited-key';
const ONE_MODEL_KEY = 'soak-team-one-model-key';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const GATEWAY_SETTINGS = {
  MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
  UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
  STREAM_IDLE_TIMEOUT_MS: String(TIMEOUT_MS),
  GATEWAY_KEYS: JSON.stringify([
    { name: 'limited', sha256: sha256(LIMITED_KEY), rpm: 1 },
    { name: 'one-model', sha256: sha256(ONE_MODEL_KEY), models: ['gemini-2.5-pro'] },
  ]),
};
const VERTEX_ROUTE = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/openapi/chat/completions`;

interface Kind {
  /** A directive for the emulator, sent in the body's `emulator` field (the gateway forwards it). */
  directives?: Directives;
  stream?: boolean;
  /** What the client sends instead of a valid chat request. */
  body?: string | Buffer;
  path?: string;
  method?: string;
  key?: string;
  /** The status expected, or the statuses allowed. */
  expectStatus: number | number[];
  /** Leaves after the first body bytes, as a client closing its tab does. */
  leaveEarly?: boolean;
  /** What the body must contain (read whole, unless the client leaves early). */
  expectText?: string;
}

const chat = (directives: Directives | undefined, stream: boolean) =>
  JSON.stringify({ ...JSON.parse(CHAT_BODY), stream, emulator: directives });

/** The kinds of answer the gateway gives: session 7's soak, and the timeouts and team keys. */
const KINDS: Record<string, Kind> = {
  json: { expectStatus: 200, expectText: '"choices"' },
  stream: { stream: true, directives: { chunks: 5 }, expectStatus: 200, expectText: '[DONE]' },
  cancel: {
    stream: true,
    directives: { chunks: 40, chunkDelayMs: 25 },
    expectStatus: 200,
    leaveEarly: true,
  },
  'error-event': {
    stream: true,
    directives: { chunks: 5, errorEventAfterChunks: 2 },
    expectStatus: 200,
    expectText: 'data: {"error"',
  },
  broken: {
    stream: true,
    directives: { chunks: 5, abortAfterChunks: 2 },
    expectStatus: 200,
    expectText: '"upstream_stream_interrupted"',
  },
  'cut-json': { directives: { cutBody: true }, expectStatus: 502 },
  'rate-limited': { directives: { status: 429, retryAfter: 0 }, expectStatus: 429 },
  unavailable: { directives: { status: 503, retryAfter: 0 }, expectStatus: 503 },
  'bad-json': { body: '{"model":', expectStatus: 400 },
  'bad-key': { key: 'not-the-key', expectStatus: 401 },
  'no-route': { path: '/v1/no-such-route', method: 'GET', expectStatus: 404 },
  'too-large': { body: Buffer.alloc(MAX_REQUEST_BYTES + 1024, 0x20), expectStatus: 413 },
  timeout: { directives: { headersDelayMs: TIMEOUT_MS + 500 }, expectStatus: 504 },
  idle: {
    stream: true,
    directives: { chunks: 3, chunkDelayMs: TIMEOUT_MS + 500 },
    expectStatus: 200,
    expectText: '"stream_idle_timeout"',
  },
  // The first of each minute is admitted; the rest get the key's own 429.
  'key-limit': { key: LIMITED_KEY, expectStatus: [429, 200] },
  'key-model': { key: ONE_MODEL_KEY, expectStatus: 403 },
  'vertex-route': { path: VERTEX_ROUTE, expectStatus: 200, expectText: '"choices"' },
};

const USAGE =
  'usage: npm run bench:soak -- [--runtime workerd,deno] [--rounds 6] [--requests 8000] [--connections 32] [--kinds all|json,stream,...]';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: 'workerd,deno' },
    // workerd's RSS took four rounds of the mix to level off: six show whether it did.
    rounds: { type: 'string', default: '6' },
    requests: { type: 'string', default: '8000' },
    connections: { type: 'string', default: '32' },
    kinds: { type: 'string', default: 'all' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`${USAGE}\nkinds: ${Object.keys(KINDS).join(', ')}`);
  process.exit(0);
}
const positive = (name: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive integer\n${USAGE}`);
  return n;
};
const rounds = positive('rounds', values.rounds);
const requests = positive('requests', values.requests);
const connections = positive('connections', values.connections);
const kindNames = values.kinds === 'all' ? Object.keys(KINDS) : values.kinds.split(',');
for (const name of kindNames) {
  if (!KINDS[name])
    throw new Error(`--kinds: unknown "${name}" (${Object.keys(KINDS).join(', ')})`);
}
const legIds = values.runtime.split(',').map((runtime): LegId => {
  if (runtime === 'workerd' || runtime === 'deno') return `gateway-${runtime}`;
  throw new Error(`--runtime: workerd, deno or both\n${USAGE}`);
});

/** Sends one request of a kind; null if the answer was the expected one, else what was wrong. */
function send(agent: Agent, leg: RunningLeg, kind: Kind): Promise<string | null> {
  const url = new URL(leg.url);
  const body = kind.body ?? chat(kind.directives, kind.stream === true);
  const method = kind.method ?? 'POST';
  const headers: Record<string, string> = {
    authorization: kind.key ? `Bearer ${kind.key}` : (leg.headers.authorization as string),
  };
  if (method === 'POST') headers['content-type'] = 'application/json';
  return new Promise<string | null>((resolve) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: kind.path ?? url.pathname,
        method,
        headers,
      },
      (res) => {
        const expected = [kind.expectStatus].flat();
        if (!expected.includes(res.statusCode ?? 0)) {
          res.resume();
          resolve(`status ${res.statusCode}, expected ${expected.join(' or ')}`);
          return;
        }
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => {
          if (!kind.leaveEarly) {
            parts.push(part);
            return;
          }
          res.destroy();
          resolve(null);
        });
        res.on('error', () => resolve(kind.leaveEarly ? null : 'the answer broke off'));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString();
          resolve(
            kind.expectText && !text.includes(kind.expectText)
              ? `no ${kind.expectText} in the answer`
              : null,
          );
        });
      },
    );
    req.on('error', (error) => resolve(`request failed: ${error.message}`));
    // A POST goes chunked, without a declared length: the gateway reads up to its limit, so
    // the sender sees the 413 rather than a reset (a declared length over it is refused unread).
    if (method === 'POST') req.write(body);
    req.end();
  });
}

interface Round {
  rssMb: number;
  seconds: number;
  failures: Map<string, number>;
  openUpstream: number;
}

async function soakRound(leg: RunningLeg, emulator: LegContext['emulator']): Promise<Round> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const failures = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const name = kindNames[next % kindNames.length] as string;
      next += 1;
      const problem = await send(agent, leg, KINDS[name] as Kind);
      if (problem) {
        const key = `${name}: ${problem}`;
        failures.set(key, (failures.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const openUpstream = await waitForUpstreamStreams(emulator, 10_000);
  // Time for the runtime to finish what the last answers left (timers, log writes, a GC).
  await sleep(2000);
  return { rssMb: treeRssBytes(leg.pid as number) / 1e6, seconds, failures, openUpstream };
}

/** Runs the rounds on one leg; returns what made its figures doubtful, if anything. */
async function soak(id: LegId, context: LegContext): Promise<string[]> {
  const leg = await startLeg(id, context, { gatewaySettings: GATEWAY_SETTINGS });
  const problems = new Set<string>();
  const after: number[] = [];
  try {
    await sleep(500);
    const idleMb = treeRssBytes(leg.pid as number) / 1e6;
    console.log(`\n${id}: ${rounds} rounds of ${requests} requests at ${connections} connections`);
    console.log(`kinds, in turn: ${kindNames.join(', ')}`);
    console.log(`idle: ${idleMb.toFixed(1)} MB\n`);
    console.log(
      '| round | RSS after (MB) | change (MB) | seconds | unexpected answers | upstream streams left open |',
    );
    console.log(
      '| ----: | -------------: | ----------: | ------: | -----------------: | -------------------------: |',
    );
    let previous = idleMb;
    for (let r = 1; r <= rounds; r++) {
      const round = await soakRound(leg, context.emulator);
      const failed = [...round.failures.values()].reduce((a, b) => a + b, 0);
      const change = round.rssMb - previous;
      previous = round.rssMb;
      console.log(
        `| ${r} | ${round.rssMb.toFixed(1)} | ${change >= 0 ? '+' : ''}${change.toFixed(1)} | ${round.seconds.toFixed(1)} | ${failed} | ${round.openUpstream} |`,
      );
      for (const [what, count] of round.failures) console.log(`    ${count} × ${what}`);
      after.push(round.rssMb);
      if (failed > 0) problems.add('some answers were not the expected ones');
      if (round.openUpstream > 0) problems.add('upstream streams were left open');
    }
    // A leak climbs to the end; a runtime settling climbs, then stays.
    const half = Math.floor(after.length / 2);
    if (half > 0) {
      const from = after[after.length - 1 - half] as number;
      const to = after[after.length - 1] as number;
      const change = to - from;
      console.log(
        `\nover the last ${half} round(s): ${change >= 0 ? '+' : ''}${change.toFixed(1)} MB (${((change / from) * 100).toFixed(1)}%)`,
      );
    }
  } finally {
    await leg.stop();
  }
  return [...problems];
}

async function main(): Promise<void> {
  installCleanup();
  const workdir = mkdtempSync(join(tmpdir(), 'bench-soak-'));
  onCleanup(() => rmSync(workdir, { recursive: true, force: true }));
  const emulator = await startEmulator(workdir);
  const config = await fetch(`${emulator.url}/__emulator/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tokenTtlSeconds: TOKEN_TTL_SECONDS }),
  });
  if (!config.ok) throw new Error(`emulator config: ${config.status} ${await config.text()}`);
  const context: LegContext = { emulator, workdir };
  if (legIds.includes('gateway-workerd')) {
    mkdirSync(join(workdir, 'bundle'));
    context.bundle = await buildBundle(join(workdir, 'bundle'));
  }
  const problems: string[] = [];
  for (const id of legIds) problems.push(...(await soak(id, context)).map((p) => `${id}: ${p}`));
  await emulator.stop();
  if (problems.length > 0) {
    console.error(`\n${problems.join('\n')}\nThe memory figures may not mean much.`);
    process.exitCode = 1;
  }
}

main().finally(killAll);
