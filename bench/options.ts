/**
 * Command-line options. The full run is what BENCHMARKS.md reports (about 8 minutes here, 4 rounds); quick
 * mode (`--quick` or BENCH_QUICK=1) keeps the same structure with shorter measurements, for
 * iterating on the gateway, and writes no BENCHMARKS.md unless asked to.
 *
 *   npm run bench [-- --quick] [--rounds N] [--legs direct,gateway-deno,...] [--out FILE]
 *                 [--no-write]
 */
import { parseArgs } from 'node:util';
import { LEG_IDS, type LegId } from './legs.ts';

export interface BenchOptions {
  quick: boolean;
  legs: LegId[];
  /** Alternating rounds of the throughput, latency and streaming figures. */
  rounds: number;
  connections: number;
  warmupSeconds: number;
  throughputSeconds: number;
  /** Sequential requests per leg per round for latency and time to first chunk. */
  sequential: { maxRequests: number; maxSeconds: number };
  largeStreamBytes: number;
  /** Large streams per leg per round: up to maxRequests, while within maxSeconds. */
  largeStreams: { maxRequests: number; maxSeconds: number };
  openStreams: number;
  /** The emulator's delay between chunks of the open streams. */
  openStreamChunkDelayMs: number;
  memoryRounds: number;
  coldSamples: number;
  /** Where to write the report; null writes nothing. */
  output: string | null;
}

/** The large streamed answer of a full run; `bench:compare --large` uses the same, to compare. */
export const LARGE_STREAM_BYTES = 8_000_000;

const USAGE =
  'usage: npm run bench [-- --quick] [--rounds N] [--legs a,b,...] [--out FILE] [--no-write]';

export function parseOptions(argv: string[] = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      legs: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true || process.env.BENCH_QUICK === '1';
  const legs = values.legs ? values.legs.split(',').map((name) => name.trim()) : [...LEG_IDS];
  for (const leg of legs) {
    if (!(LEG_IDS as readonly string[]).includes(leg)) {
      throw new Error(`unknown leg "${leg}" (legs: ${LEG_IDS.join(', ')})\n${USAGE}`);
    }
  }
  const rounds = values.rounds === undefined ? (quick ? 3 : 4) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be >= 1\n${USAGE}`);
  const defaultOutput = quick ? null : 'BENCHMARKS.md';
  return {
    quick,
    legs: legs as LegId[],
    rounds,
    connections: 32,
    warmupSeconds: quick ? 0.5 : 1,
    throughputSeconds: quick ? 1 : 5,
    sequential: quick
      ? { maxRequests: 300, maxSeconds: 0.3 }
      : { maxRequests: 2000, maxSeconds: 2 },
    largeStreamBytes: quick ? 2_000_000 : LARGE_STREAM_BYTES,
    largeStreams: quick ? { maxRequests: 1, maxSeconds: 0 } : { maxRequests: 4, maxSeconds: 2 },
    openStreams: 1000,
    openStreamChunkDelayMs: 500,
    memoryRounds: quick ? 1 : 3,
    coldSamples: quick ? 1 : 5,
    output: values['no-write'] ? null : (values.out ?? defaultOutput),
  };
}
