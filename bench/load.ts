/**
 * The measurements. Each function drives one leg's Target (the latency ones several, in turn) and
 * returns plain numbers (ms, req/s, bytes); none of them knows which leg it is measuring, so
 * every leg is measured identically.
 *
 * Throughput uses autocannon (its HTTP client is much cheaper than node:http, so on a 2-core
 * machine the load generator takes less CPU away from the system under test). Latencies below a
 * millisecond are timed with process.hrtime.bigint() around sequential requests on one keep-alive
 * connection per leg, where autocannon's whole-millisecond histogram would be too coarse; the legs
 * take turns request by request, so they are timed on the same machine (see inTurn).
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import autocannon from 'autocannon';
import type { Directives } from '../emulator/directives.ts';
import type { EmulatorStats } from '../emulator/state.ts';
import type { Target } from './legs.ts';
import { sleep, treeCpuNs } from './processes.ts';
import { percentile } from './stats.ts';

/** A small, realistic OpenAI-style request; the bare Gemini name is what OpenAI clients send. */
const CHAT_REQUEST = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Why is the sky blue?' }],
};
export const CHAT_BODY = JSON.stringify(CHAT_REQUEST);
export const STREAM_BODY = JSON.stringify({ ...CHAT_REQUEST, stream: true });

/** The emulator controls a measurement needs: answers shaped by directives, and its counters. */
export interface UpstreamControl {
  queueDirectives(directives: Directives, times: number): Promise<void>;
  clearFaults(): Promise<void>;
  stats(): Promise<EmulatorStats>;
}

/** How long a sequential measurement may take, per target: whichever limit comes first. */
export interface Budget {
  maxRequests: number;
  maxSeconds: number;
}

export interface Latency {
  p50: number;
  p99: number;
  samples: number;
}

function latencyOf(samples: number[]): Latency {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples: samples.length };
}

// ---------------------------------------------------------------------------------------------
// One timed request

interface Timing {
  /** From writing the request to the first body byte, ms. */
  firstByteMs: number;
  /** From writing the request to the end of the body, ms. */
  totalMs: number;
  bytes: number;
}

const nsToMs = (ns: bigint) => Number(ns) / 1e6;

function timedRequest(agent: Agent, target: Target, body: string): Promise<Timing> {
  const url = new URL(target.url);
  const headers = {
    ...target.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  };
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers },
      (res: IncomingMessage) => {
        let firstByte = 0n;
        let bytes = 0;
        let errorText = '';
        res.on('data', (chunk: Buffer) => {
          if (firstByte === 0n) firstByte = process.hrtime.bigint();
          bytes += chunk.length;
          if (res.statusCode !== 200 && errorText.length < 500) errorText += chunk.toString();
        });
        res.once('end', () => {
          const end = process.hrtime.bigint();
          if (res.statusCode !== 200) {
            reject(new Error(`${target.url} answered ${res.statusCode}: ${errorText}`));
            return;
          }
          resolve({
            firstByteMs: nsToMs((firstByte || end) - start),
            totalMs: nsToMs(end - start),
            bytes,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sequential requests to several targets taken in turn, one keep-alive connection each: a request
 * to each target, then the next turn, after a short warm-up. Each turn starts one target further
 * on (A B C, B C A, C A B; with two targets A B, B A), so that no target always follows the same
 * one. On this shared machine a process's speed drifts by up to three times within a minute, and
 * by half within a few seconds (the same step of the gateway, timed inside Deno, took 17 µs in
 * one round, 31 in the one before and 51 a minute earlier), so legs timed one after the other,
 * seconds apart, differ by the drift as much as by their own cost. Taken in turn, the targets
 * see the same machine. Each target gets up to `maxRequests` samples, and the whole takes about
 * `maxSeconds` per target, with at least 50 samples each.
 */
async function inTurn(
  targets: readonly Target[],
  body: string,
  budget: Budget,
  sample: (timing: Timing) => number,
): Promise<number[][]> {
  const agents = targets.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  const order = targets.map((_, i) => i);
  const turn = async (n: number, record: (i: number, timing: Timing) => void) => {
    for (const i of [...order.slice(n % order.length), ...order.slice(0, n % order.length)]) {
      record(i, await timedRequest(agents[i] as Agent, targets[i] as Target, body));
    }
  };
  try {
    for (let n = 0; n < 20; n++) await turn(n, () => {});
    const samples = targets.map(() => [] as number[]);
    const deadline = performance.now() + budget.maxSeconds * 1000 * targets.length;
    // At least 50 samples, so a p99 is more than the single slowest request.
    for (let n = 0; n < budget.maxRequests && (n < 50 || performance.now() < deadline); n++) {
      await turn(n, (i, timing) => samples[i]?.push(sample(timing)));
    }
    return samples;
  } finally {
    for (const agent of agents) agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The figures

export interface Throughput {
  requestsPerSecond: number;
  latency: Latency;
  /**
   * CPU time the serving process (all its threads) spent per request during the measured
   * seconds, in µs; null for a leg with no process of ours (direct). At saturation req/s also
   * depends on how the cores are shared with the load generator and the emulator; this is the
   * leg's own cost.
   */
  cpuUsPerRequest: number | null;
}

/** Closed-loop load at `connections` keep-alive connections: req/s and the latency of each. */
export async function measureThroughput(
  target: Target,
  connections: number,
  seconds: number,
  warmupSeconds: number,
  body: string = CHAT_BODY,
): Promise<Throughput> {
  const run = async (duration: number, record: boolean) => {
    const samples: number[] = [];
    let failed = 0;
    const instance = autocannon({
      url: target.url,
      connections,
      duration,
      method: 'POST',
      headers: { ...target.headers, 'content-type': 'application/json' },
      body,
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status !== 200) failed += 1;
      else if (record) samples.push(ms);
    });
    const result = await instance;
    if (failed > 0 || result.errors > 0 || result.timeouts > 0) {
      throw new Error(
        `${target.url}: ${failed} non-200 answers, ${result.errors} errors, ${result.timeouts} timeouts under load`,
      );
    }
    return { samples, duration: result.duration };
  };
  if (warmupSeconds > 0) await run(warmupSeconds, false);
  const pid = target.pid ?? null;
  const cpuBefore = pid === null ? 0 : treeCpuNs(pid);
  const { samples, duration } = await run(seconds, true);
  const cpuUsPerRequest =
    pid === null || samples.length === 0
      ? null
      : (treeCpuNs(pid) - cpuBefore) / 1e3 / samples.length;
  return {
    requestsPerSecond: samples.length / duration,
    latency: latencyOf(samples),
    cpuUsPerRequest,
  };
}

/** Latency of a non-streaming request at one connection per target, the targets in turn. */
export async function measureLatency(
  targets: readonly Target[],
  budget: Budget,
): Promise<Latency[]> {
  return (await inTurn(targets, CHAT_BODY, budget, (t) => t.totalMs)).map(latencyOf);
}

/**
 * Time to the first chunk of a streamed answer (the emulator's default answer, no delays), at one
 * connection per target, the targets in turn.
 */
export async function measureTimeToFirstChunk(
  targets: readonly Target[],
  budget: Budget,
): Promise<Latency[]> {
  return (await inTurn(targets, STREAM_BODY, budget, (t) => t.firstByteMs)).map(latencyOf);
}

/**
 * MB/s (10^6 bytes) of a large streamed answer, over the client's wire bytes, timed from its first
 * byte to its last: the emulator composes the whole answer before it sends headers, so that part
 * is the same for every leg and is left out. At least one stream, then as many as the budget
 * allows, after one warm-up stream.
 */
export async function measureStreamRate(
  target: Target,
  upstream: UpstreamControl,
  totalBytes: number,
  budget: Budget,
): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  await upstream.queueDirectives({ totalBytes }, budget.maxRequests + 1);
  try {
    await timedRequest(agent, target, STREAM_BODY);
    let bytes = 0;
    let ms = 0;
    const deadline = performance.now() + budget.maxSeconds * 1000;
    for (let i = 0; i < budget.maxRequests && (i === 0 || performance.now() < deadline); i++) {
      const timing = await timedRequest(agent, target, STREAM_BODY);
      if (timing.bytes < totalBytes) {
        throw new Error(`${target.url} streamed ${timing.bytes} bytes, expected > ${totalBytes}`);
      }
      bytes += timing.bytes;
      ms += timing.totalMs - timing.firstByteMs;
    }
    return bytes / 1e6 / (ms / 1000);
  } finally {
    agent.destroy();
    await upstream.clearFaults();
  }
}

export interface OpenStreams {
  /** How long opening all of them took, ms. */
  openedInMs: number;
  close(): Promise<void>;
}

/**
 * Opens `count` concurrent streams that stay open (a chunk every `chunkDelayMs`), each on its own
 * connection, and resolves once every one has delivered its first chunk. At most 64 are being
 * opened at a time, so no listen backlog overflows and turns into SYN retries.
 */
export async function openSlowStreams(
  target: Target,
  upstream: UpstreamControl,
  count: number,
  chunkDelayMs: number,
): Promise<OpenStreams> {
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  // Enough chunks that no stream ends on its own while it is being measured.
  await upstream.queueDirectives({ chunks: 200, chunkDelayMs, firstChunkDelayMs: 0 }, count);
  const url = new URL(target.url);
  const headers = {
    ...target.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(STREAM_BODY)),
  };
  const open: IncomingMessage[] = [];
  const started = performance.now();
  const openOne = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`${target.url} answered ${res.statusCode} to a slow stream`));
            return;
          }
          open.push(res);
          res.once('data', () => resolve());
          res.on('data', () => {});
          res.on('error', () => {});
        },
      );
      req.on('error', reject);
      req.end(STREAM_BODY);
    });
  let next = 0;
  const opener = async () => {
    while (next < count) {
      next += 1;
      await openOne();
    }
  };
  const close = async () => {
    for (const res of open) res.destroy();
    agent.destroy();
    await upstream.clearFaults();
  };
  try {
    await Promise.all(Array.from({ length: 64 }, opener));
  } catch (error) {
    await close();
    throw error;
  }
  return { openedInMs: performance.now() - started, close };
}

/**
 * Waits until the emulator has no stream open (the system under test has cancelled or finished
 * every upstream stream), at most `timeoutMs`; returns how many are still open.
 */
export async function waitForUpstreamStreams(
  upstream: UpstreamControl,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const { openStreams } = await upstream.stats();
    if (openStreams === 0 || performance.now() >= deadline) return openStreams;
    await sleep(50);
  }
}

export interface FirstRequests {
  firstMs: number;
  secondMs: number;
}

/** The first request a fresh process serves (the cold path), and the one after it. */
export async function measureFirstRequests(target: Target): Promise<FirstRequests> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await timedRequest(agent, target, CHAT_BODY);
    const second = await timedRequest(agent, target, CHAT_BODY);
    return { firstMs: first.totalMs, secondMs: second.totalMs };
  } finally {
    agent.destroy();
  }
}
