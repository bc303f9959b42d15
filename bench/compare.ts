/**
 * Compares checkouts of the gateway on one runtime, to tell whether a change made it cheaper.
 * On this shared 2-core machine a leg's req/s moves by ±20% from one minute to the next, more than
 * most changes are worth; what holds still is the ratio of two legs measured one right after the
 * other. So each round runs the floor and every checkout back to back, and the report is the
 * median over rounds of each one's CPU time per request divided by the floor's in that round.
 *
 *   npm run bench:compare -- --variants main=.,try=../try [--runtime workerd|deno]
 *                            [--mode json|stream] [--rounds 12] [--seconds 1.5] [--memory]
 *
 * A checkout is a directory with the gateway's files and its dependencies installed: a git
 * worktree (`git worktree add ../try`) with `npm ci` run in it, or a node_modules symlink to this
 * one's. `--memory` instead opens 1000 slow streams on a fresh process per checkout and round,
 * and reports the RSS over idle, as `npm run bench` does.
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
  measureThroughput,
  openSlowStreams,
  STREAM_BODY,
  waitForUpstreamStreams,
} from './load.ts';
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
  'usage: npm run bench:compare -- --variants name=dir,name=dir [--runtime workerd|deno] [--mode json|stream] [--rounds N] [--seconds S] [--connections N] [--memory]';

const { values } = parseArgs({
  options: {
    variants: { type: 'string' },
    runtime: { type: 'string', default: 'workerd' },
    mode: { type: 'string', default: 'json' },
    rounds: { type: 'string', default: '12' },
    seconds: { type: 'string', default: '1.5' },
    connections: { type: 'string', default: '32' },
    memory: { type: 'boolean', default: false },
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

async function compareCpu(list: Variant[], context: LegContext): Promise<void> {
  const legs: RunningLeg[] = [];
  for (const v of list) legs.push(await start(v, context));
  for (const leg of legs) await measureThroughput(leg, connections, 2, 0, body);
  const cpu = list.map(() => [] as number[]);
  const rps = list.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    // Forwards on even rounds, backwards on odd ones, as npm run bench alternates.
    const order = legs.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const result = await measureThroughput(legs[i] as RunningLeg, connections, seconds, 0, body);
      cpu[i]?.push(result.cpuUsPerRequest ?? Number.NaN);
      rps[i]?.push(result.requestsPerSecond);
    }
    process.stderr.write(`round ${round + 1}/${rounds}\n`);
  }
  const floorCpu = cpu[0] as number[];
  console.log(
    `${runtime}, ${values.mode}, ${connections} connections, ${rounds} rounds of ${seconds} s\n`,
  );
  console.log('variant       CPU/floor (median; per round)                     CPU µs/req   req/s');
  list.forEach((v, i) => {
    const ratios = (cpu[i] as number[]).map((x, r) => x / (floorCpu[r] as number));
    console.log(
      `${v.name.padEnd(12)}  ${median(ratios).toFixed(3)}  [${ratios.map((x) => x.toFixed(2)).join(' ')}]`.padEnd(
        64,
      ) +
        `${median(cpu[i] as number[])
          .toFixed(1)
          .padStart(10)}  ${median(rps[i] as number[])
          .toFixed(0)
          .padStart(6)}`,
    );
  });
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
    await (values.memory ? compareMemory(list, context) : compareCpu(list, context));
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
