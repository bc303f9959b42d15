/**
 * Compares checkouts of the gateway on one runtime, to tell whether a change made it cheaper.
 * On this shared 2-core machine a leg's req/s moves by ±20% from one minute to the next, more than
 * most changes are worth; what holds still is the ratio of two legs measured one right after the
 * other. So each round runs the floor and every checkout back to back, and the report is the
 * median over rounds of each one's CPU time per request divided by the floor's in that round.
 *
 *   npm run bench:compare -- --variants main=.,try=../try [--runtime workerd|deno]
 *                            [--mode json|stream] [--rounds 12] [--seconds 1.5]
 *                            [--memory | --latency | --large]
 *
 * A checkout is a directory with the gateway's files and its dependencies installed: a git
 * worktree (`git worktree add ../try`) with `npm ci` run in it, or a node_modules symlink to this
 * one's. `--memory` instead opens 1000 slow streams on a fresh process per checkout and round,
 * and reports the RSS over idle, as `npm run bench` does. `--latency` instead times sequential
 * requests on one connection per leg, the legs taking turns request by request (the whole answer
 * with `--mode json`, the first chunk with `--mode stream`), and reports each checkout's p50
 * minus the floor's, as a median over rounds.
 * `--large` streams an 8 MB answer through each leg and reports MB/s relative to the floor's.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBundle } from './bundle.ts';
import { startEmulator } from './emulator.ts';
import { type Checkout, type LegContext, type LegId, type RunningLeg, startLeg } from './legs.ts';
import {
  CHAT_BODY,
  measureLatency,
  measureStreamRate,
  measureThroughput,
  measureTimeToFirstChunk,
  openSlowStreams,
  STREAM_BODY,
  waitForUpstreamStreams,
} from './load.ts';
import { LARGE_STREAM_BYTES } from './options.ts';
import {
  installCleanup,
  killAll,
  onCleanup,
  peakTreeRssBytes,
  sleep,
  treeRssBytes,
} from './processes.ts';
import { median } from './stats.ts';

const USAGE =
  'usage: npm run bench:compare -- --variants name=dir,name=dir [--runtime workerd|deno] [--mode json|stream] [--rounds N] [--seconds S] [--connections N] [--memory | --latency | --large]';

const { values } = parseArgs({
  options: {
    variants: { type: 'string' },
    runtime: { type: 'string', default: 'workerd' },
    mode: { type: 'string', default: 'json' },
    rounds: { type: 'string', default: '12' },
    seconds: { type: 'string', default: '1.5' },
    connections: { type: 'string', default: '32' },
    memory: { type: 'boolean', default: false },
    latency: { type: 'boolean', default: false },
    large: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help || !values.variants) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}
const runtime = values.runtime;
if (runtime !== 'workerd' && runtime !== 'deno')
  throw new Error(`--runtime: workerd or deno\n${USAGE}`);
if (values.mode !== 'json' && values.mode !== 'stream') {
  throw new Error(`--mode: json or stream\n${USAGE}`);
}
if ([values.memory, values.latency, values.large].filter(Boolean).length > 1) {
  throw new Error(`at most one of --memory, --latency and --large\n${USAGE}`);
}
const body = values.mode === 'stream' ? STREAM_BODY : CHAT_BODY;
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const variants = values.variants.split(',').map((spec) => {
  const [name, dir] = spec.split('=');
  if (!name || !dir) throw new Error(`--variants takes name=dir pairs\n${USAGE}`);
  return { name, dir: resolve(dir) };
});
const FLOOR: LegId = runtime === 'workerd' ? 'floor-workerd' : 'floor-deno';
const GATEWAY: LegId = runtime === 'workerd' ? 'gateway-workerd' : 'gateway-deno';

interface Variant {
  name: string;
  checkout: Checkout | undefined;
  leg: LegId;
}

/** The floor first: every figure is relative to it, round by round. */
async function prepare(workdir: string): Promise<Variant[]> {
  const list: Variant[] = [{ name: 'floor', checkout: undefined, leg: FLOOR }];
  for (const { name, dir } of variants) {
    const checkout: Checkout = { dir };
    if (runtime === 'workerd') {
      const outdir = join(workdir, `bundle-${name}`);
      mkdirSync(outdir);
      checkout.bundle = await buildBundle(outdir, { checkout: dir });
    }
    list.push({ name, checkout, leg: GATEWAY });
  }
  return list;
}

const start = (v: Variant, context: LegContext) =>
  startLeg(v.leg, context, { checkout: v.checkout });

async function startAll(list: Variant[], context: LegContext): Promise<RunningLeg[]> {
  const legs: RunningLeg[] = [];
  for (const v of list) legs.push(await start(v, context));
  return legs;
}

/**
 * Runs the rounds: `measureRound` returns one result per leg, in the legs' order. Returns each
 * leg's results, one per round.
 */
async function byRound<T>(
  legs: RunningLeg[],
  measureRound: (round: number) => Promise<T[]>,
): Promise<T[][]> {
  const results = legs.map(() => [] as T[]);
  for (let round = 0; round < rounds; round++) {
    const measured = await measureRound(round);
    for (const [i, result] of measured.entries()) results[i]?.push(result);
    process.stderr.write(`round ${round + 1}/${rounds}\n`);
  }
  return results;
}

/**
 * Measures every leg once per round, forwards on even rounds and backwards on odd ones (as
 * npm run bench alternates), and returns each leg's results, one per round.
 */
function alternate<T>(
  legs: RunningLeg[],
  measure: (leg: RunningLeg) => Promise<T>,
): Promise<T[][]> {
  return byRound(legs, async (round) => {
    const measured: T[] = new Array(legs.length);
    const order = legs.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) measured[i] = await measure(legs[i] as RunningLeg);
    return measured;
  });
}

interface Column {
  label: string;
  /** Per variant, one value per round; the median is shown. */
  values: number[][];
  digits: number;
}

/**
 * One line per variant: its figure against the floor's in the same round (median, then every
 * round's), then the medians of the raw figures.
 */
function printComparison(
  list: Variant[],
  title: string,
  relative: { label: string; of: (x: number, floor: number) => number; signed: boolean },
  raw: Column[],
): void {
  const first = raw[0] as Column;
  const floor = first.values[0] as number[];
  const show = (x: number) => `${relative.signed && x >= 0 ? '+' : ''}${x.toFixed(3)}`;
  console.log(`${runtime}, ${title}, ${rounds} rounds of ${seconds} s\n`);
  console.log(
    `${'variant'.padEnd(14)}${`${relative.label} (median; per round)`.padEnd(50)}` +
      raw.map((c) => c.label.padStart(12)).join(''),
  );
  list.forEach((v, i) => {
    const per = (first.values[i] as number[]).map((x, r) => relative.of(x, floor[r] as number));
    const perRound = `${show(median(per))}  [${per.map((x) => x.toFixed(2)).join(' ')}]`;
    const columns = raw.map((c) =>
      median(c.values[i] as number[])
        .toFixed(c.digits)
        .padStart(12),
    );
    console.log(`${v.name.padEnd(12)}  ${perRound.padEnd(50)}${columns.join('')}`);
  });
}

const ratio = (x: number, floor: number) => x / floor;

async function compareCpu(list: Variant[], context: LegContext): Promise<void> {
  const legs = await startAll(list, context);
  for (const leg of legs) await measureThroughput(leg, connections, 2, 0, body);
  const results = await alternate(legs, (leg) =>
    measureThroughput(leg, connections, seconds, 0, body),
  );
  printComparison(
    list,
    `${values.mode}, ${connections} connections`,
    { label: 'CPU / floor', of: ratio, signed: false },
    [
      {
        label: 'CPU µs/req',
        values: results.map((r) => r.map((x) => x.cpuUsPerRequest ?? Number.NaN)),
        digits: 1,
      },
      { label: 'req/s', values: results.map((r) => r.map((x) => x.requestsPerSecond)), digits: 0 },
    ],
  );
}

async function compareLatency(list: Variant[], context: LegContext): Promise<void> {
  const legs = await startAll(list, context);
  const measure = values.mode === 'stream' ? measureTimeToFirstChunk : measureLatency;
  // Warmed up as the main benchmark's rounds are by their load runs: a fresh process's first few
  // thousand requests run code not yet optimised, and the rounds would drift down with it.
  for (const leg of legs) await measureThroughput(leg, connections, 2, 0, body);
  const budget = { maxRequests: 100_000, maxSeconds: seconds };
  // Every leg in each round, request by request in turn (see load.ts), not one after another.
  const results = await byRound(legs, async () =>
    (await measure(legs, budget)).map((latency) => latency.p50),
  );
  printComparison(
    list,
    `${values.mode === 'stream' ? 'first chunk' : 'whole answer'} p50 at 1 connection`,
    { label: '− floor, ms', of: (x, floor) => x - floor, signed: true },
    [{ label: 'p50 ms', values: results, digits: 3 }],
  );
}

async function compareLargeStream(list: Variant[], context: LegContext): Promise<void> {
  const legs = await startAll(list, context);
  const budget = { maxRequests: 20, maxSeconds: seconds };
  const results = await alternate(legs, (leg) =>
    measureStreamRate(leg, context.emulator, LARGE_STREAM_BYTES, budget),
  );
  printComparison(
    list,
    `MB/s of the ${LARGE_STREAM_BYTES / 1e6} MB streamed answer`,
    { label: 'MB/s / floor', of: ratio, signed: false },
    [{ label: 'MB/s', values: results, digits: 1 }],
  );
}

async function compareMemory(list: Variant[], context: LegContext): Promise<void> {
  const added = list.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, v] of list.entries()) {
      const leg = await start(v, context);
      try {
        const pid = leg.pid as number;
        await measureThroughput(leg, connections, 1, 0, STREAM_BODY);
        await sleep(1000);
        const idle = treeRssBytes(pid);
        const streams = await openSlowStreams(leg, context.emulator, 1000, 500);
        const open = await peakTreeRssBytes(pid, 2000);
        await streams.close();
        await waitForUpstreamStreams(context.emulator, 5000);
        added[i]?.push(open - idle);
      } finally {
        await leg.stop();
      }
    }
    process.stderr.write(`round ${round + 1}/${rounds}\n`);
  }
  console.log(`${runtime}: RSS over idle with 1000 open streams, fresh process per sample\n`);
  list.forEach((v, i) => {
    const mb = (added[i] as number[]).map((x) => x / 1e6);
    console.log(
      `${v.name.padEnd(12)}  ${median(mb).toFixed(1).padStart(6)} MB  [${mb.map((x) => x.toFixed(1)).join(' ')}]`,
    );
  });
}

async function main(): Promise<void> {
  installCleanup();
  const workdir = mkdtempSync(join(tmpdir(), 'gateway-compare-'));
  onCleanup(() => rmSync(workdir, { recursive: true, force: true }));
  const list = await prepare(workdir);
  const emulator = await startEmulator(workdir);
  // No bundle of this checkout: a gateway leg on workerd always brings its own checkout's.
  const context: LegContext = { emulator, workdir };
  try {
    if (values.memory) await compareMemory(list, context);
    else if (values.latency) await compareLatency(list, context);
    else if (values.large) await compareLargeStream(list, context);
    else await compareCpu(list, context);
  } finally {
    await emulator.stop();
  }
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    killAll();
    process.exit(1);
  },
);
