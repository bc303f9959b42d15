/**
 * Turns a run's raw results into the markdown the benchmark prints and writes to BENCHMARKS.md:
 * medians over rounds, figures paired by round (a gateway against the floor measured minutes
 * apart would mostly measure the machine's drift; within a round they are measured back to back,
 * or for the latency figures in turn), and the issue's targets with their verdicts.
 */
import { BUNDLE_LIMIT_BYTES, bundleGzipBytes } from './bundle.ts';
import { LEG_INFO, type LegId } from './legs.ts';
import type { BenchResults, LegRound } from './results.ts';
import { median, pairedMedian, spread } from './stats.ts';

const GATEWAYS = [
  { runtime: 'workerd', gateway: 'gateway-workerd', floor: 'floor-workerd' },
  { runtime: 'Deno', gateway: 'gateway-deno', floor: 'floor-deno' },
] as const;

const FLOOR_OF: Partial<Record<LegId, LegId>> = {
  'gateway-workerd': 'floor-workerd',
  'gateway-deno': 'floor-deno',
};

/** The issue's targets. */
export const TARGETS = {
  throughputVsFloor: 0.9,
  throughputVsPortkey: 5,
  addedLatencyMs: 0.1,
  addedFirstChunkMs: 0.2,
  openStreamsBytes: 50e6,
};

// ---------------------------------------------------------------------------------------------
// Number formatting

const NA = '–';
const valid = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

function ms(x: number | undefined): string {
  if (!valid(x)) return NA;
  return x.toFixed(Math.abs(x) < 10 ? 3 : Math.abs(x) < 100 ? 2 : 1);
}
const signedMs = (x: number | undefined) => (valid(x) ? `${x >= 0 ? '+' : ''}${ms(x)}` : NA);
const int = (x: number | undefined) => (valid(x) ? Math.round(x).toLocaleString('en-US') : NA);
const mb = (bytes: number | undefined) => (valid(bytes) ? (bytes / 1e6).toFixed(1) : NA);
const ratio = (x: number | undefined) => (valid(x) ? `${x.toFixed(2)}×` : NA);

/**
 * A markdown table with padded columns (the first left-aligned, the rest right-aligned): readable
 * in a terminal, and already in the shape Biome's markdown formatter gives tables.
 */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) =>
    Math.max(3, cell.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const pad = (cell: string, i: number) =>
    i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0);
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = widths.map((width, i) =>
    i === 0 ? '-'.repeat(width) : `${'-'.repeat(width - 1)}:`,
  );
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Derived figures

class Figures {
  private readonly results: BenchResults;
  constructor(results: BenchResults) {
    this.results = results;
  }

  has(leg: LegId): boolean {
    return (this.results.rounds[leg]?.length ?? 0) > 0;
  }

  series(leg: LegId, pick: (round: LegRound) => number): number[] {
    return (this.results.rounds[leg] ?? []).map(pick);
  }

  median(leg: LegId, pick: (round: LegRound) => number): number | undefined {
    return this.has(leg) ? median(this.series(leg, pick)) : undefined;
  }

  /** Median over rounds of (leg − other), each round's pair measured in the same round. */
  difference(leg: LegId, other: LegId | undefined, pick: (round: LegRound) => number) {
    if (!other || !this.has(leg) || !this.has(other)) return undefined;
    return pairedMedian(this.series(leg, pick), this.series(other, pick), (a, b) => a - b);
  }

  ratio(leg: LegId, other: LegId, pick: (round: LegRound) => number) {
    if (!this.has(leg) || !this.has(other)) return undefined;
    return pairedMedian(this.series(leg, pick), this.series(other, pick), (a, b) => a / b);
  }

  memory(leg: LegId) {
    const samples = this.results.memory[leg] ?? [];
    if (samples.length === 0) return undefined;
    return {
      idle: median(samples.map((s) => s.idleBytes)),
      open: median(samples.map((s) => s.openBytes)),
      added: median(samples.map((s) => s.openBytes - s.idleBytes)),
      openedInMs: median(samples.map((s) => s.openedInMs)),
      lingering: median(samples.map((s) => s.lingeringUpstreamStreams)),
    };
  }

  cold(leg: LegId, selfSigned = false) {
    const samples = (selfSigned ? this.results.coldSelfSigned : this.results.cold)[leg] ?? [];
    if (samples.length === 0) return undefined;
    return {
      startup: median(samples.map((s) => s.startupMs)),
      first: median(samples.map((s) => s.firstMs)),
      second: median(samples.map((s) => s.secondMs)),
      added: median(samples.map((s) => s.firstMs - s.secondMs)),
    };
  }
}

const rps = (r: LegRound) => r.throughput.requestsPerSecond;
// NaN (shown as –) for the direct leg, which has no process of its own to watch.
const cpuPerRequest = (r: LegRound) => r.throughput.cpuUsPerRequest ?? Number.NaN;
const p50At1 = (r: LegRound) => r.latency.p50;
const firstChunkP50 = (r: LegRound) => r.firstChunk.p50;

// ---------------------------------------------------------------------------------------------
// Tables

export function resultTables(results: BenchResults): string {
  const f = new Figures(results);
  const legs = results.legs;
  const connections = results.options.connections;
  const sections: string[] = [];

  sections.push(
    `### Throughput and latency (non-streaming chat request)\n\n${table(
      [
        'Leg',
        `req/s @${connections}`,
        'req/s min–max',
        `CPU µs/req @${connections}`,
        'p50 @1 (ms)',
        'p99 @1 (ms)',
        `p50 @${connections} (ms)`,
        `p99 @${connections} (ms)`,
        'added p50 @1 vs direct (ms)',
        'added p50 @1 vs floor (ms)',
      ],
      legs
        .filter((leg) => f.has(leg))
        .map((leg) => {
          const throughput = spread(f.series(leg, rps));
          return [
            LEG_INFO[leg].label,
            int(throughput.median),
            `${int(throughput.min)}–${int(throughput.max)}`,
            int(f.median(leg, cpuPerRequest)),
            ms(f.median(leg, p50At1)),
            ms(f.median(leg, (r) => r.latency.p99)),
            ms(f.median(leg, (r) => r.throughput.latency.p50)),
            ms(f.median(leg, (r) => r.throughput.latency.p99)),
            leg === 'direct' ? NA : signedMs(f.difference(leg, 'direct', p50At1)),
            signedMs(f.difference(leg, FLOOR_OF[leg], p50At1)),
          ];
        }),
    )}`,
  );

  sections.push(
    `### Streaming\n\n${table(
      [
        'Leg',
        'first chunk p50 (ms)',
        'first chunk p99 (ms)',
        'added vs direct (ms)',
        'added vs floor (ms)',
        `large stream (${(results.options.largeStreamBytes / 1e6).toFixed(0)} MB answer), MB/s`,
      ],
      legs
        .filter((leg) => f.has(leg))
        .map((leg) => [
          LEG_INFO[leg].label,
          ms(f.median(leg, firstChunkP50)),
          ms(f.median(leg, (r) => r.firstChunk.p99)),
          leg === 'direct' ? NA : signedMs(f.difference(leg, 'direct', firstChunkP50)),
          signedMs(f.difference(leg, FLOOR_OF[leg], firstChunkP50)),
          (f.median(leg, (r) => r.streamMBps) ?? Number.NaN).toFixed(1),
        ]),
    )}`,
  );

  const open = results.options.openStreams;
  sections.push(
    `### Memory: RSS of the runtime process, fresh, with ${open} open streams\n\n${table(
      [
        'Leg',
        'idle (MB)',
        `${open} streams open (MB)`,
        'over idle (MB)',
        'per stream (KB)',
        'time to open all (ms)',
        'upstream streams still open 2 s after the clients left',
      ],
      legs.flatMap((leg) => {
        const m = f.memory(leg);
        if (!m) return [];
        return [
          [
            LEG_INFO[leg].label,
            mb(m.idle),
            mb(m.open),
            mb(m.added),
            (m.added / open / 1e3).toFixed(1),
            int(m.openedInMs),
            int(m.lingering),
          ],
        ];
      }),
    )}`,
  );

  sections.push(
    `### Cold path: a fresh process\n\n${table(
      [
        'Leg',
        'start to ready (ms)',
        'first request (ms)',
        'second request (ms)',
        'first − second (ms)',
      ],
      legs.flatMap((leg) =>
        [false, true].flatMap((selfSigned) => {
          const c = f.cold(leg, selfSigned);
          if (!c) return [];
          const label = `${LEG_INFO[leg].label}${selfSigned ? ', self-signed JWT' : ''}`;
          return [[label, ms(c.startup), ms(c.first), ms(c.second), ms(c.added)]];
        }),
      ),
    )}`,
  );

  const bundle = results.bundle;
  sections.push(
    `### Worker bundle\n\n${table(
      ['Bundle', 'raw (KiB)', 'gzip (KiB)', 'limit (KiB)'],
      [
        [
          `\`${bundle.moduleName}\` from \`wrangler deploy --dry-run\``,
          (bundle.rawBytes / 1024).toFixed(2),
          (bundleGzipBytes(bundle) / 1024).toFixed(2),
          (BUNDLE_LIMIT_BYTES / 1024).toFixed(0),
        ],
      ],
    )}`,
  );

  sections.push(
    `### Ratios and differences, paired by round\n\n${table(
      ['Figure', ...GATEWAYS.map((g) => g.runtime)],
      [
        [
          `gateway / floor, req/s @${connections}`,
          ...GATEWAYS.map((g) => ratio(f.ratio(g.gateway, g.floor, rps))),
        ],
        [
          `gateway / Portkey, req/s @${connections}`,
          ...GATEWAYS.map((g) => ratio(f.ratio(g.gateway, 'portkey', rps))),
        ],
        [
          `gateway / floor, CPU per request @${connections}`,
          ...GATEWAYS.map((g) => ratio(f.ratio(g.gateway, g.floor, cpuPerRequest))),
        ],
        [
          `floor / Portkey, req/s @${connections}`,
          ...GATEWAYS.map((g) => ratio(f.ratio(g.floor, 'portkey', rps))),
        ],
        [
          'gateway − floor, p50 @1 (ms)',
          ...GATEWAYS.map((g) => signedMs(f.difference(g.gateway, g.floor, p50At1))),
        ],
        [
          'gateway − floor, first chunk p50 (ms)',
          ...GATEWAYS.map((g) => signedMs(f.difference(g.gateway, g.floor, firstChunkP50))),
        ],
        [
          'gateway / floor, large stream MB/s',
          ...GATEWAYS.map((g) => ratio(f.ratio(g.gateway, g.floor, (r) => r.streamMBps))),
        ],
      ],
    )}`,
  );
  return sections.join('\n\n');
}

// ---------------------------------------------------------------------------------------------
// Targets

export interface Verdict {
  target: string;
  /** One cell per runtime, or a single cell for runtime-independent targets. */
  cells: string[];
  pass: boolean | null;
}

function judged(
  value: number | undefined,
  ok: (x: number) => boolean,
  show: (x: number) => string,
) {
  if (!valid(value)) return { cell: 'n/a (leg not run)', pass: null };
  const pass = ok(value);
  return { cell: `${pass ? 'PASS' : 'FAIL'} (${show(value)})`, pass };
}

export function verdicts(results: BenchResults): Verdict[] {
  const f = new Figures(results);
  const perRuntime = (
    target: string,
    value: (g: (typeof GATEWAYS)[number]) => number | undefined,
    ok: (x: number) => boolean,
    show: (x: number) => string,
  ): Verdict => {
    const cells = GATEWAYS.map((g) => judged(value(g), ok, show));
    const decided = cells.filter((c) => c.pass !== null);
    return {
      target,
      cells: cells.map((c) => c.cell),
      pass: decided.length === 0 ? null : decided.every((c) => c.pass),
    };
  };
  const bundleBytes = bundleGzipBytes(results.bundle);
  return [
    perRuntime(
      `Throughput @${results.options.connections} ≥ ${TARGETS.throughputVsFloor} × the floor`,
      (g) => f.ratio(g.gateway, g.floor, rps),
      (x) => x >= TARGETS.throughputVsFloor,
      (x) => `${x.toFixed(2)}×`,
    ),
    perRuntime(
      `Throughput @${results.options.connections} ≥ ${TARGETS.throughputVsPortkey} × Portkey`,
      (g) => f.ratio(g.gateway, 'portkey', rps),
      (x) => x >= TARGETS.throughputVsPortkey,
      (x) => `${x.toFixed(2)}×`,
    ),
    perRuntime(
      `Median added latency @1 within ${TARGETS.addedLatencyMs} ms of the floor`,
      (g) => f.difference(g.gateway, g.floor, p50At1),
      (x) => x <= TARGETS.addedLatencyMs,
      (x) => `${signedMs(x)} ms`,
    ),
    perRuntime(
      `Added time to first chunk within ${TARGETS.addedFirstChunkMs} ms of the floor`,
      (g) => f.difference(g.gateway, g.floor, firstChunkP50),
      (x) => x <= TARGETS.addedFirstChunkMs,
      (x) => `${signedMs(x)} ms`,
    ),
    perRuntime(
      `${results.options.openStreams} open streams < ${TARGETS.openStreamsBytes / 1e6} MB over idle`,
      (g) => f.memory(g.gateway)?.added,
      (x) => x < TARGETS.openStreamsBytes,
      (x) => `${mb(x)} MB`,
    ),
    {
      target: `Worker bundle ≤ ${BUNDLE_LIMIT_BYTES / 1024} KiB gzip`,
      cells: [
        judged(
          bundleBytes,
          (x) => x <= BUNDLE_LIMIT_BYTES,
          (x) => `${(x / 1024).toFixed(2)} KiB`,
        ).cell,
      ],
      pass: bundleBytes <= BUNDLE_LIMIT_BYTES,
    },
  ];
}

/**
 * The targets that are not relative to the floor, judged on the floor itself. The floor is the
 * cheapest forwarder its runtime allows, so where it misses one, no gateway on that runtime can
 * meet it on this machine, whatever the gateway does.
 */
export function floorMisses(results: BenchResults): string[] {
  const f = new Figures(results);
  const misses: string[] = [];
  for (const g of GATEWAYS) {
    const vsPortkey = f.ratio(g.floor, 'portkey', rps);
    if (valid(vsPortkey) && vsPortkey < TARGETS.throughputVsPortkey) {
      misses.push(
        `${g.runtime}: the floor serves ${ratio(vsPortkey)} Portkey's req/s (target ≥ ${TARGETS.throughputVsPortkey}×)`,
      );
    }
    const added = f.memory(g.floor)?.added;
    if (valid(added) && added >= TARGETS.openStreamsBytes) {
      misses.push(
        `${g.runtime}: ${results.options.openStreams} open streams cost the floor ${mb(added)} MB over idle (target < ${TARGETS.openStreamsBytes / 1e6} MB)`,
      );
    }
  }
  return misses;
}

export function verdictTable(list: Verdict[]): string {
  return table(
    ['Target', ...GATEWAYS.map((g) => g.runtime)],
    list.map((v) => [
      v.target,
      ...(v.cells.length === 1 ? [v.cells[0] ?? NA, '(Workers only)'] : v.cells),
    ]),
  );
}
