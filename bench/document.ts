/** BENCHMARKS.md: the run's machine, command and method around report.ts's tables. */
import { floorMisses, resultTables, type Verdict, verdictTable } from './report.ts';
import type { BenchResults } from './results.ts';

function machineSection(results: BenchResults): string {
  const { machine } = results;
  const versions = Object.entries(machine.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    `- **Date:** ${results.startedAt.toISOString()} (took ${Math.round(results.durationSeconds)} s)`,
    `- **Command:** \`${results.command}\``,
    `- **CPU:** ${machine.cpu}, ${machine.cores} cores`,
    `- **RAM:** ${machine.memoryGiB.toFixed(1)} GiB`,
    `- **OS:** ${machine.os}`,
    `- **Versions:** ${versions}`,
    `- **Load average (1 min):** ${results.loadAverage.before.toFixed(2)} before, ${results.loadAverage.after.toFixed(2)} after`,
    ...(results.stealShare === null
      ? []
      : [
          `- **CPU time the host took back (steal) during the run:** ${(results.stealShare * 100).toFixed(0)}% (absolute figures suffer from it; ratios between legs measured in the same round less so)`,
        ]),
  ].join('\n');
}

/** One bullet per kind of leg that ran. */
function legBullets(results: BenchResults): string {
  const ran = new Set(results.legs);
  const bullets: string[] = [];
  if (ran.has('direct')) {
    bullets.push(
      '**direct**: the Vertex emulator (`node emulator/main.ts`, its own process), with a valid\n' +
        '  access token.',
    );
  }
  if (ran.has('gateway-workerd')) {
    bullets.push(
      '**gateway, workerd**: the bundle from `wrangler deploy --dry-run --outdir DIR`, served by\n' +
        '  `node_modules/.bin/workerd serve config.capnp` (not `wrangler dev`, whose proxy and\n' +
        '  second workerd sit in the request path). Compatibility date, flags and `[vars]` come\n' +
        '  from wrangler.toml; the secrets and `VERTEX_BASE_URL` are text bindings.',
    );
  }
  if (ran.has('gateway-deno')) {
    bullets.push(
      '**gateway, Deno**: `deno serve` with the flags of `npm run serve:deno` on\n' +
        '  `src/runtime/deno.ts`, configured through the environment.',
    );
  }
  if (ran.has('floor-workerd') || ran.has('floor-deno')) {
    bullets.push(
      '**floor** (one per runtime): `bench/floor-worker.ts`, the cheapest possible passthrough.\n' +
        "  It reads the body (a gateway must, to validate it), posts it to the emulator's chat\n" +
        '  completions URL with a fixed access token, and returns the upstream response as is.\n' +
        '  It parses nothing. On workerd it is served like the gateway, with its types stripped.',
    );
  }
  if (ran.has('portkey')) {
    bullets.push(
      "**Portkey**: `@portkey-ai/gateway`'s `start-server.js` on Node, as an OpenAI passthrough\n" +
        '  (`x-portkey-provider: openai`, `x-portkey-custom-host:\n' +
        '  <emulator>/v1/projects/P/locations/L/endpoints/openapi`, to which it appends\n' +
        '  `/chat/completions`). `bench/portkey-preload.ts` binds it to loopback and works around\n' +
        '  a streaming bug of the installed version (below).',
    );
  }
  return bullets.map((bullet) => `- ${bullet}`).join('\n');
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function methodSection(results: BenchResults): string {
  const o = results.options;
  const large = o.largeStreams;
  return `Every server is one process with one JavaScript thread, bound to 127.0.0.1.

${legBullets(results)}

Clients send the same small OpenAI request (\`gemini-2.5-flash\`, one user message) to every leg.
The gateway legs receive it on \`/v1/chat/completions\` with a gateway key and rewrite the model
to \`google/gemini-2.5-flash\`; the others forward it unchanged.

- **Alternating rounds**: ${plural(o.rounds, 'round')}; even rounds visit the legs in order, odd
  rounds in reverse (A B C, C B A, ...): first every leg's throughput, then the latency figures,
  for which a gateway and its floor take turns (below), then every leg's large stream. Tables
  show the median over rounds. A difference or ratio between two legs is computed within each
  round, from measurements taken in the same round, and its median is reported.
- **Throughput**: autocannon, ${o.connections} keep-alive connections, closed loop, a
  ${o.warmupSeconds} s warm-up, then ${o.throughputSeconds} s measured. p50/p99
  @${o.connections} are over every request of that run. CPU µs/req is the CPU time of the
  leg's process (every thread, from each thread's \`/proc/…/schedstat\`) over the measured
  seconds, divided by the requests served: the leg's own cost per request, apart from how the two
  cores are shared with autocannon and the emulator, which req/s at saturation also reflects.
- **Latency @1 and time to first chunk**: sequential requests on one keep-alive
  \`http.Agent\` connection per leg, timed with \`process.hrtime.bigint()\`. The legs of one
  runtime (a gateway and its floor) take turns request by request (one request to each, then
  the next turn, each turn starting with the other leg), after 20 warm-up turns: up to
  ${o.sequential.maxRequests} requests per leg per round, or about ${o.sequential.maxSeconds} s
  per leg (at least 50). Taken in turn, the two are timed on the same machine: this machine's
  speed drifts by up to three times within a minute, and by half within a few seconds, which
  legs timed one after another would read as their own difference. Legs of other runtimes do
  not share the turns, because their requests in between slow the others (see
  \`bench/phases.ts\`). So the "added vs direct" columns compare measurements seconds apart and
  under different conditions: direct alone, the gateway and floor with each other's requests in
  between, which slows them a little. They are for orientation; the targets are against the
  floor.
  The first chunk is the first body byte of a streamed answer (the emulator's default answer,
  no delays).
- **Large stream**: a ${(o.largeStreamBytes / 1e6).toFixed(0)} MB answer (\`totalBytes\`, 1 KiB
  chunks) after one warm-up stream; up to ${plural(large.maxRequests, 'stream')} per leg per
  round (fewer if they take over ${large.maxSeconds} s). MB/s of wire bytes from the first byte
  to the last: the emulator composes the answer before it sends headers, the same for every leg.
- **Memory**: a fresh process per sample (${plural(o.memoryRounds, 'sample')} per leg,
  alternating), warmed up with 1 s of load and 50 streamed requests. VmRSS of its process tree
  from /proc: idle (after a quiet second), then the peak over
  ${(4 * o.openStreamChunkDelayMs) / 1000} s with ${o.openStreams} concurrent streams open, each
  on its own connection and sent a chunk every ${o.openStreamChunkDelayMs} ms, once all have
  delivered their first chunk. The last column counts the upstream streams the emulator still
  serves 2 s after every client disconnected (a leg that does not pass the cancel on keeps them
  until they end).
- **Cold path**: a fresh process per sample (${plural(o.coldSamples, 'sample')} per leg,
  alternating): the first request after the server accepts connections (for the gateway: parse
  the configuration, import the key, sign, exchange at the emulator's token endpoint, forward),
  and the second one. The gateway legs run once more per sample with
  \`GOOGLE_AUTH_MODE=self-signed\` (import, sign, forward: no exchange, which the run checks). The
  emulator's token endpoint is on loopback, so the exchange saved here is far cheaper than a round
  trip to Google from the edge.
- **Directives** (the large answer, the slow streams) are queued on the emulator's fault queue
  before each measurement rather than sent in the body, because Portkey drops body fields it
  does not know; every leg sends the same body.
- **Units**: ms; MB = 10^6 bytes; KiB = 1024 bytes.

**The machine is shared.** It has ${results.machine.cores} cores. The load generator (this Node
process), the emulator and the system under test run on them at the same time, unpinned, for
every leg alike; the direct leg has one process fewer. Absolute figures therefore understate
what a dedicated machine would do, and ratios within one run are the figures to compare. Other
work on the machine during the run shows up in the load average above.

**Portkey quirks.** (1) With the installed \`@hono/node-server\`, every streamed chat request
through Portkey fails with HTTP 500 (\`TypeError: immutable\`: its stream handler appends to
the headers of the upstream fetch response, which hono's Response wrapper keeps by reference);
the preload re-wraps event-stream responses in a native \`Response\`. (2) Portkey's stream
handler waits 25 ms (\`setTimeout\`) before relaying the first event, which shows in its time
to first chunk. (3) Portkey rebuilds the request body from the parameters it knows (unknown
fields such as the emulator's directives are dropped). (4) Portkey keeps reading an upstream
stream after its client has gone (the last memory column).`;
}

function floorSection(results: BenchResults): string {
  const misses = floorMisses(results);
  if (misses.length === 0) return '';
  return `
The floor itself, the cheapest forwarder its runtime allows, misses these targets in this run,
so no gateway on that runtime could meet them on this machine:

${misses.map((miss) => `- ${miss}`).join('\n')}
`;
}

export function benchmarksDocument(results: BenchResults, list: Verdict[]): string {
  const allPass = list.every((v) => v.pass !== false);
  return `# Benchmarks

Generated by \`npm run bench\` (\`bench/run.ts\`, about 8 minutes); do not edit by hand.
\`npm run bench -- --quick\` runs the same phases briefly and only prints the tables (\`--legs\`
picks legs, \`--help\` lists the flags). The bundle-size target is also checked on its own by
\`npm run check:bundle\` (a few seconds, exits 1 over the limit), and
\`npm run bench:profile\` takes CPU profiles of the gateway and the floors inside workerd and Deno.

## Run

${machineSection(results)}

## Targets (issue 4)

${verdictTable(list)}

${allPass ? 'Every target is met in this run.' : 'Not every target is met in this run: see the FAIL rows.'}
${floorSection(results)}
## Results

${resultTables(results)}

## Method

${methodSection(results)}
`;
}
