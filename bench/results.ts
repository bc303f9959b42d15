/** The raw results of one benchmark run: what run.ts measures and report.ts turns into tables. */
import type { Bundle } from './bundle.ts';
import type { LegId } from './legs.ts';
import type { Latency, Throughput } from './load.ts';
import type { Machine } from './machine.ts';
import type { BenchOptions } from './options.ts';

/** One leg's figures in one round. */
export interface LegRound {
  throughput: Throughput;
  /** Non-streaming latency at one connection. */
  latency: Latency;
  /** Time to the first streamed chunk at one connection. */
  firstChunk: Latency;
  streamMBps: number;
}

export interface MemorySample {
  idleBytes: number;
  openBytes: number;
  openedInMs: number;
  /** Upstream streams the emulator still served a while after every client had left. */
  lingeringUpstreamStreams: number;
}

export interface ColdSample {
  startupMs: number;
  firstMs: number;
  secondMs: number;
}

export interface BenchResults {
  options: BenchOptions;
  legs: readonly LegId[];
  /** Per leg, one entry per round, in round order (so legs can be paired by round). */
  rounds: Partial<Record<LegId, LegRound[]>>;
  memory: Partial<Record<LegId, MemorySample[]>>;
  cold: Partial<Record<LegId, ColdSample[]>>;
  /** The gateway legs' cold path again, with GOOGLE_AUTH_MODE=self-signed (no token exchange). */
  coldSelfSigned: Partial<Record<LegId, ColdSample[]>>;
  bundle: Bundle;
  machine: Machine;
  command: string;
  startedAt: Date;
  durationSeconds: number;
  loadAverage: { before: number; after: number };
  /** The share of CPU time the host took back during the run (steal); null if unknown. */
  stealShare: number | null;
}
