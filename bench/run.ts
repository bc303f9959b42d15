/**
 * `npm run bench`: the side-by-side benchmark of issue 4. It builds the Worker bundle, starts the
 * emulator and every leg as its own process, runs the phases (phases.ts), prints the tables and
 * writes BENCHMARKS.md. See options.ts for the flags and document.ts for the method.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBundle } from './bundle.ts';
import { benchmarksDocument } from './document.ts';
import { type EmulatorProcess, startEmulator } from './emulator.ts';
import { type LegContext, type RunningLeg, startLeg } from './legs.ts';
import { cpuTicks, describeMachine, loadAverage, stealShare } from './machine.ts';
import { parseOptions } from './options.ts';
import { log, measureCold, measureMemory, measureRounds, smokeTest } from './phases.ts';
import { BIN, installCleanup, killAll, onCleanup, ROOT, runCommand } from './processes.ts';
import { resultTables, verdicts, verdictTable } from './report.ts';
import type { BenchResults } from './results.ts';

function command(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') {
    return `npm run bench${args ? ` -- ${args}` : ''}`;
  }
  return `node bench/run.ts${args ? ` ${args}` : ''}`;
}

/** Runs one phase of the benchmark and logs how long it took, to keep the full run in budget. */
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  log(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function main(): Promise<void> {
  const options = parseOptions();
  installCleanup();
  const startedAt = new Date();
  const started = performance.now();
  const loadBefore = loadAverage();
  const ticksBefore = cpuTicks();
  const workdir = mkdtempSync(join(tmpdir(), 'gateway-bench-'));
  // It holds a private key and configs with secrets: removed even after Ctrl-C.
  onCleanup(() => rmSync(workdir, { recursive: true, force: true }));
  const running: RunningLeg[] = [];
  let emulator: EmulatorProcess | null = null;
  try {
    log(`benchmark (${options.quick ? 'quick' : 'full'} mode), scratch dir ${workdir}`);
    const machine = await describeMachine();
    const bundleDir = join(workdir, 'bundle');
    mkdirSync(bundleDir);
    const bundle = await buildBundle(bundleDir);
    log(`bundle ${bundle.moduleName}: ${(bundle.gzipBytes / 1024).toFixed(2)} KiB gzip`);
    emulator = await startEmulator(workdir);
    const context: LegContext = { emulator, bundle, workdir };
    for (const id of options.legs) running.push(await startLeg(id, context));
    await smokeTest(running, options);

    const upstream = emulator;
    const rounds = await phase('rounds', () => measureRounds(running, upstream, options));
    // Memory and the cold path use fresh processes; the long-lived ones would only be in the way.
    for (const leg of running.splice(0)) await leg.stop();
    const memory = await phase('memory', () => measureMemory(options.legs, context, options));
    const cold = await phase('cold path', () => measureCold(options.legs, context, options));

    const results: BenchResults = {
      options,
      legs: options.legs,
      rounds,
      memory,
      ...cold,
      bundle,
      machine,
      command: command(),
      startedAt,
      durationSeconds: (performance.now() - started) / 1000,
      loadAverage: { before: loadBefore, after: loadAverage() },
      stealShare: stealShare(ticksBefore, cpuTicks()),
    };
    const list = verdicts(results);
    console.log(`\n${resultTables(results)}\n\n### Targets\n\n${verdictTable(list)}\n`);
    if (options.output) {
      const file = resolve(ROOT, options.output);
      writeFileSync(file, benchmarksDocument(results, list));
      // `npm run lint` checks markdown too: the report must leave the repository lint-clean.
      await runCommand(join(BIN, 'biome'), ['format', '--write', file]);
      log(`wrote ${options.output}`);
    }
    log(`finished in ${results.durationSeconds.toFixed(0)} s`);
  } finally {
    for (const leg of running) await leg.stop();
    await emulator?.stop();
    killAll();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  killAll();
  process.exit(1);
});
