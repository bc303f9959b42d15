/**
 * The benchmark's phases, in the order run.ts runs them: a smoke test, the alternating rounds on
 * long-lived processes, then memory and the cold path on fresh processes. Each returns the raw
 * samples per leg; report.ts does the statistics.
 */
import type { EmulatorProcess } from './emulator.ts';
import { LEG_INFO, type LegContext, type LegId, type RunningLeg, startLeg } from './legs.ts';
import {
  type Latency,
  measureFirstRequests,
  measureLatency,
  measureStreamRate,
  measureThroughput,
  measureTimeToFirstChunk,
  openSlowStreams,
  type Throughput,
  waitForUpstreamStreams,
} from './load.ts';
import type { BenchOptions } from './options.ts';
import { peakTreeRssBytes, sleep, treeRssBytes } from './processes.ts';
import type { ColdSample, LegRound, MemorySample } from './results.ts';

/** Progress goes to stderr, so stdout carries only the tables. */
export const log = (message: string) => process.stderr.write(`${message}\n`);

/**
 * Round r visits the legs forwards when r is even and backwards when it is odd (A B C, C B A, ...),
 * so no leg always runs first, last, or right after the same neighbour.
 */
function roundOrder<T>(items: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

/**
 * Measures the legs of each runtime taking turns, a runtime at a time. Taking turns cancels the
 * machine's drift between the legs of a group, but each leg's requests then have the others'
 * in between, presumably evicting its caches: with all six legs taking turns, Portkey's Node
 * process among them, the gateway's added p50 over its floor read 0.86 ms on workerd and 0.55
 * on Deno, against 0.33 and 0.39 without Portkey. A gateway is compared with its own runtime's
 * floor, so only those share turns.
 */
async function inTurnByRuntime(
  legs: readonly RunningLeg[],
  measure: (group: RunningLeg[]) => Promise<Latency[]>,
): Promise<Map<LegId, Latency>> {
  const groups = new Map<string, RunningLeg[]>();
  for (const leg of legs) {
    const runtime = LEG_INFO[leg.id].runtime ?? 'none';
    groups.set(runtime, [...(groups.get(runtime) ?? []), leg]);
  }
  const byLeg = new Map<LegId, Latency>();
  for (const group of groups.values()) {
    const results = await measure(group);
    for (const [i, leg] of group.entries()) byLeg.set(leg.id, results[i] as Latency);
  }
  return byLeg;
}

/** One request of each kind per leg, so a broken leg fails in seconds, not minutes in. */
export async function smokeTest(legs: RunningLeg[], options: BenchOptions): Promise<void> {
  for (const leg of legs) {
    try {
      await measureLatency([leg], { maxRequests: 1, maxSeconds: 0 });
      await measureTimeToFirstChunk([leg], { maxRequests: 1, maxSeconds: 0 });
    } catch (error) {
      log(`${LEG_INFO[leg.id].label} does not answer; its output:\n${leg.output()}`);
      throw error;
    }
  }
  log(`all ${legs.length} legs answer; ${options.rounds} rounds follow`);
}

export async function measureRounds(
  legs: RunningLeg[],
  emulator: EmulatorProcess,
  options: BenchOptions,
): Promise<Partial<Record<LegId, LegRound[]>>> {
  const rounds: Partial<Record<LegId, LegRound[]>> = {};
  for (let round = 0; round < options.rounds; round++) {
    const order = roundOrder(legs, round);
    const throughputs: Throughput[] = [];
    for (const leg of order) {
      throughputs.push(
        await measureThroughput(
          leg,
          options.connections,
          options.throughputSeconds,
          options.warmupSeconds,
        ),
      );
    }
    // The legs of one runtime, a gateway and its floor, take turns request by request (see
    // load.ts). They also keep the large streams below from following a load run at once:
    // requests the load generator abandoned as it stopped may still reach the emulator and take
    // their directives. A quiet second first, so those leftovers do not land in the first
    // group's figures either.
    await sleep(1000);
    const latencies = await inTurnByRuntime(order, (group) =>
      measureLatency(group, options.sequential),
    );
    const firstChunks = await inTurnByRuntime(order, (group) =>
      measureTimeToFirstChunk(group, options.sequential),
    );
    for (const [i, leg] of order.entries()) {
      const streamMBps = await measureStreamRate(
        leg,
        emulator,
        options.largeStreamBytes,
        options.largeStreams,
      );
      const throughput = throughputs[i] as Throughput;
      const latency = latencies.get(leg.id) as Latency;
      const firstChunk = firstChunks.get(leg.id) as Latency;
      const list = rounds[leg.id] ?? [];
      list.push({ throughput, latency, firstChunk, streamMBps });
      rounds[leg.id] = list;
      log(
        `round ${round + 1}/${options.rounds} ${LEG_INFO[leg.id].label.padEnd(18)} ` +
          `${throughput.requestsPerSecond.toFixed(0).padStart(6)} req/s, ` +
          `p50@1 ${latency.p50.toFixed(3)} ms, first chunk ${firstChunk.p50.toFixed(3)} ms, ` +
          `${streamMBps.toFixed(1)} MB/s`,
      );
    }
  }
  return rounds;
}

/** How long after its clients leave a leg may keep upstream streams open before that counts. */
const CANCEL_GRACE_MS = 2_000;

/**
 * Each sample runs on a fresh process: warmed up, measured idle, then with the streams open. It
 * is stopped afterwards, which also ends any upstream stream it failed to cancel (Portkey keeps
 * reading them after its clients leave), so no leg inherits another's leftover traffic.
 */
export async function measureMemory(
  ids: LegId[],
  context: LegContext,
  options: BenchOptions,
): Promise<Partial<Record<LegId, MemorySample[]>>> {
  const memory: Partial<Record<LegId, MemorySample[]>> = {};
  const processLegs = ids.filter((id) => LEG_INFO[id].runtime !== null);
  for (let round = 0; round < options.memoryRounds; round++) {
    for (const id of roundOrder(processLegs, round)) {
      const leg = await startLeg(id, context);
      try {
        const pid = leg.pid as number;
        // The idle figure is a process that has served traffic (code compiled, pools warm),
        // after a quiet second, not a process that has never run a request.
        await measureThroughput(leg, options.connections, 1, 0);
        await measureTimeToFirstChunk([leg], { maxRequests: 50, maxSeconds: 1 });
        await sleep(1000);
        const idleBytes = treeRssBytes(pid);
        const streams = await openSlowStreams(
          leg,
          context.emulator,
          options.openStreams,
          options.openStreamChunkDelayMs,
        );
        // Held for a few chunk intervals, so the figure covers streams in flight, not just open.
        const openBytes = await peakTreeRssBytes(pid, 4 * options.openStreamChunkDelayMs);
        await streams.close();
        const lingering = await waitForUpstreamStreams(context.emulator, CANCEL_GRACE_MS);
        const list = memory[id] ?? [];
        list.push({
          idleBytes,
          openBytes,
          openedInMs: streams.openedInMs,
          lingeringUpstreamStreams: lingering,
        });
        memory[id] = list;
        log(
          `memory ${round + 1}/${options.memoryRounds} ${LEG_INFO[id].label.padEnd(18)} ` +
            `idle ${(idleBytes / 1e6).toFixed(1)} MB, ${options.openStreams} streams ` +
            `${(openBytes / 1e6).toFixed(1)} MB (opened in ${streams.openedInMs.toFixed(0)} ms; ` +
            `${lingering} upstream streams open ${CANCEL_GRACE_MS / 1000} s after the clients left)`,
        );
      } finally {
        await leg.stop();
        await waitForUpstreamStreams(context.emulator, 10_000);
      }
    }
  }
  return memory;
}

export interface ColdResults {
  cold: Partial<Record<LegId, ColdSample[]>>;
  coldSelfSigned: Partial<Record<LegId, ColdSample[]>>;
}

/**
 * The first request on a fresh process, per leg; the gateway legs also once more in each sample
 * with GOOGLE_AUTH_MODE=self-signed, to show what skipping the token exchange saves.
 */
export async function measureCold(
  ids: LegId[],
  context: LegContext,
  options: BenchOptions,
): Promise<ColdResults> {
  const results: ColdResults = { cold: {}, coldSelfSigned: {} };
  const runs = ids
    .filter((id) => LEG_INFO[id].runtime !== null)
    .flatMap((id) => (id.startsWith('gateway-') ? [{ id }, { id, selfSigned: true }] : [{ id }]));
  for (let sample = 0; sample < options.coldSamples; sample++) {
    for (const { id, selfSigned } of roundOrder(runs, sample)) {
      const exchangesBefore = (await context.emulator.stats()).tokenExchanges;
      const leg = await startLeg(id, context, {
        gatewaySettings: selfSigned ? { GOOGLE_AUTH_MODE: 'self-signed' } : {},
      });
      try {
        const { firstMs, secondMs } = await measureFirstRequests(leg);
        const exchanges = (await context.emulator.stats()).tokenExchanges - exchangesBefore;
        if (selfSigned && exchanges !== 0) {
          throw new Error(`${id} exchanged a token in self-signed mode:\n${leg.output()}`);
        }
        const into = selfSigned ? results.coldSelfSigned : results.cold;
        const list = into[id] ?? [];
        list.push({ startupMs: leg.startupMs, firstMs, secondMs });
        into[id] = list;
        const label = `${LEG_INFO[id].label}${selfSigned ? ' (self-signed)' : ''}`;
        log(
          `cold ${sample + 1}/${options.coldSamples} ${label.padEnd(30)} ` +
            `ready ${leg.startupMs.toFixed(0)} ms, first ${firstMs.toFixed(2)} ms, ` +
            `second ${secondMs.toFixed(2)} ms`,
        );
      } finally {
        await leg.stop();
      }
    }
  }
  return results;
}
