/**
 * `npm run bench:soak`: does the gateway give memory back after many requests of every kind it
 * answers? `npm run bench` measures memory with streams held open; this measures what stays once
 * they have closed. Session 7 found a workerd leak this way (streams Vertex breaks off kept their
 * whole request alive, about 13 KB each, without end; see bench/README.md), with a throwaway
 * script that this one replaces, so the fix can be checked again.
 *
 *   npm run bench:soak -- [--runtime workerd,deno] [--rounds 4] [--requests 8000]
 *                         [--connections 24] [--kinds all | broken,json,...]
 *
 * Each round sends `--requests` requests at `--connections` at once, the kinds taken in turn,
 * waits until the emulator has no stream open, and reads the RSS of the runtime process. The
 * emulator's tokens live 20 s, so the gateway refreshes its token throughout. A leak shows as RSS
 * that climbs round over round; a runtime settling shows as a climb that levels off. It is a
 * benchmark, not a test: it prints what it saw and fails only when an answer is not the one
 * expected (exit 1), since that would make the memory figures meaningless.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Directives } from '../emulator/directives.ts';
import { buildBundle } from './bundle.ts';
import { startEmulator } from './emulator.ts';
import { type LegContext, type LegId, type RunningLeg, startLeg } from './legs.ts';
import { CHAT_BODY, waitForUpstreamStreams } from './load.ts';
import { installCleanup, killAll, onCleanup, sleep, treeRssBytes } from './processes.ts';

/** Small, so that the over-limit kind costs the load generator little to send. */
const MAX_REQUEST_BYTES = 64 * 1024;
const TOKEN_TTL_SECONDS = 20;

interface Kind {
  /** A directive for the emulator, sent in the body's `emulator` field (the gateway forwards it). */
  directives?: Directives;
  stream?: boolean;
  /** What the client sends instead of a valid chat request. */
  body?: string | Buffer;
  path?: string;
  method?: string;
  key?: string;
  expectStatus: number;
  /** Leaves after the first body bytes, as a client closing its tab does. */
  leaveEarly?: boolean;
  /** What the body must contain (read whole, unless the client leaves early). */
  expectText?: string;
}

const chat = (directives: Directives | undefined, stream: boolean) =>
  JSON.stringify({ ...JSON.parse(CHAT_BODY), stream, emulator: directives });

/** Every kind of answer the gateway gives, as the session 7 soak sent them. */
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
};

const USAGE =
  'usage: npm run bench:soak -- [--runtime workerd,deno] [--rounds 4] [--requests 8000] [--connections 24] [--kinds all|json,stream,...]';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: 'workerd,deno' },
    rounds: { type: 'string', default: '4' },
    requests: { type: 'string', default: '8000' },
    connections: { type: 'string', default: '24' },
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
        if (res.statusCode !== kind.expectStatus) {
          res.resume();
          resolve(`status ${res.statusCode}, expected ${kind.expectStatus}`);
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

async function soak(id: LegId, context: LegContext): Promise<boolean> {
  const leg = await startLeg(id, context, {
    gatewaySettings: { MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) },
  });
  let clean = true;
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
      if (failed > 0 || round.openUpstream > 0) clean = false;
    }
  } finally {
    await leg.stop();
  }
  return clean;
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
  let clean = true;
  for (const id of legIds) clean = (await soak(id, context)) && clean;
  await emulator.stop();
  if (!clean) {
    console.error(
      '\nSome answers were not the expected ones: the memory figures may not mean much.',
    );
    process.exitCode = 1;
  }
}

main().finally(killAll);
