/**
 * Where the gateway's time goes, per request, inside the real runtimes: each leg runs under load
 * with its V8 inspector open, a CPU profile is taken over the inspector, and the busy time of the
 * JavaScript thread is divided by the requests served. The floors give the runtime's own cost, so
 * gateway − floor is what the gateway's code adds. Profiles are saved to .bench/profiles/ for
 * Chrome DevTools (Performance → Load profile).
 *
 *   npm run bench:profile -- [--legs gateway-deno,floor-deno,...] [--modes json,stream]
 *                         [--seconds 5] [--top 20]
 *
 * The workerd bundle is built unminified here, so function names stay readable.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBundle } from './bundle.ts';
import {
  type BundleInfo,
  bundleModules,
  type FunctionTime,
  summarizeProfile,
} from './cpu-profile.ts';
import { startEmulator } from './emulator.ts';
import { type CpuProfile, Inspector } from './inspector.ts';
import { LEG_INFO, type LegContext, type LegId, startLeg } from './legs.ts';
import { CHAT_BODY, measureThroughput, STREAM_BODY } from './load.ts';
import { freePort, installCleanup, killAll, onCleanup, ROOT } from './processes.ts';

const MODES = { json: CHAT_BODY, stream: STREAM_BODY } as const;
type Mode = keyof typeof MODES;

const { values } = parseArgs({
  options: {
    legs: { type: 'string', default: 'floor-workerd,gateway-workerd,floor-deno,gateway-deno' },
    modes: { type: 'string', default: 'json,stream' },
    seconds: { type: 'string', default: '5' },
    top: { type: 'string', default: '20' },
    connections: { type: 'string', default: '32' },
  },
});
const legs = values.legs.split(',') as LegId[];
const modes = values.modes.split(',') as Mode[];
const seconds = Number(values.seconds);
const top = Number(values.top);
const connections = Number(values.connections);
for (const leg of legs) {
  if (!(leg in LEG_INFO) || LEG_INFO[leg].runtime === null || leg === 'portkey') {
    throw new Error(`cannot profile "${leg}": only the workerd and Deno legs have an inspector`);
  }
}

const us = (x: number) => `${x.toFixed(1).padStart(8)} µs`;
const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(1).padStart(5)}%`;

function printTop(
  title: string,
  list: FunctionTime[],
  pick: (f: FunctionTime) => number,
  busy: number,
  requests: number,
) {
  console.log(`  ${title}`);
  for (const f of [...list].sort((a, b) => pick(b) - pick(a)).slice(0, top)) {
    console.log(`    ${pct(pick(f), busy)} ${us(pick(f) / requests)}/req  ${f.name}`);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const workdir = mkdtempSync(join(tmpdir(), 'gateway-profile-'));
  onCleanup(() => rmSync(workdir, { recursive: true, force: true }));
  const outdir = join(ROOT, '.bench/profiles');
  mkdirSync(outdir, { recursive: true });
  const bundleDir = join(workdir, 'bundle');
  mkdirSync(bundleDir);
  const bundle = await buildBundle(bundleDir, { minify: false });
  const bundled: BundleInfo = {
    moduleName: bundle.moduleName,
    moduleOf: bundleModules(readFileSync(bundle.file, 'utf8')),
  };
  const emulator = await startEmulator(workdir);
  const context: LegContext = { emulator, bundle, workdir };
  const perRequest: string[] = [];
  try {
    for (const mode of modes) {
      for (const id of legs) {
        const inspectorPort = await freePort();
        const leg = await startLeg(id, context, { inspectorPort });
        const inspector = await Inspector.connect(inspectorPort);
        try {
          await inspector.send('Profiler.enable');
          await inspector.send('Profiler.setSamplingInterval', { interval: 100 });
          await measureThroughput(leg, connections, 2, 0, MODES[mode]);
          await inspector.send('Profiler.start');
          const load = await measureThroughput(leg, connections, seconds, 0, MODES[mode]);
          const { profile } = await inspector.send<{ profile: CpuProfile }>('Profiler.stop');
          const file = join(outdir, `${id}-${mode}.cpuprofile`);
          writeFileSync(file, JSON.stringify(profile));
          const summary = summarizeProfile(profile, bundled);
          const requests = load.requestsPerSecond * seconds;
          const busyPerRequest = summary.busyUs / requests;
          perRequest.push(
            `${mode.padEnd(6)} ${LEG_INFO[id].label.padEnd(18)} ${load.requestsPerSecond.toFixed(0).padStart(6)} req/s  ` +
              `JS thread busy ${pct(summary.busyUs, summary.wallUs)}  ${us(busyPerRequest)}/req`,
          );
          console.log(`\n${LEG_INFO[id].label}, ${mode}: ${perRequest.at(-1)}\n  profile: ${file}`);
          console.log('  self time by area');
          for (const [area, time] of [...summary.areas].sort((a, b) => b[1] - a[1])) {
            console.log(`    ${pct(time, summary.busyUs)} ${us(time / requests)}/req  ${area}`);
          }
          printTop('self time', summary.functions, (f) => f.selfUs, summary.busyUs, requests);
          printTop(
            'inclusive time',
            summary.functions.filter((f) => !f.name.startsWith('(')),
            (f) => f.inclusiveUs,
            summary.busyUs,
            requests,
          );
        } finally {
          inspector.close();
          await leg.stop();
        }
      }
    }
    console.log(`\nBusy time of the JavaScript thread per request (${connections} connections):`);
    for (const line of perRequest) console.log(`  ${line}`);
  } finally {
    await emulator.stop();
    killAll();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  killAll();
  process.exit(1);
});
