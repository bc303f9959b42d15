import { createEnvGateway } from '../env-gateway.ts';
import { createMemoryRateLimiter } from '../limits/memory-rate-limiter.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { createKvRateLimiter } from './deno-rate-limiter.ts';

const encoder = new TextEncoder();
let pendingLines: string[] = [];

/**
 * Request log lines, written in batches. console.log is a synchronous write to stdout per line,
 * which costs tens of microseconds per request under load; lines gathered over one timer tick go
 * out in one write instead. That write is synchronous too: Deno runs an asynchronous stdout write
 * on its blocking thread pool, and the hop there and back cost about 40 µs of CPU per request
 * (measured with the benchmark under load), more than the write itself. A stdout that blocks
 * stalls the isolate as console.log would.
 */
function batchedLog(line: string): void {
  if (pendingLines.push(line) === 1) setTimeout(flushLog, 0);
}

function flushLog(): void {
  let bytes = encoder.encode(`${pendingLines.join('\n')}\n`);
  pendingLines = [];
  try {
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  } catch {
    // stdout is closed: there is nowhere else to write.
  }
}

/**
 * Per-key limits shared through Deno KV where it exists: Deno Deploy always exposes Deno.openKv
 * (it rejects when the app has no database assigned, and the limiter then counts in memory);
 * locally it needs `--unstable-kv`, and Deno's own DENO_KV_DEFAULT_PATH lets local processes
 * share one SQLite file. The database opens on the first limited request, so startup stays
 * synchronous.
 */
function rateLimiter(): RateLimiter {
  if (typeof Deno.openKv !== 'function') return createMemoryRateLimiter();
  return createKvRateLimiter(() => Deno.openKv());
}

// Deno hands `deno serve` handlers ServeHandlerInfo, not an env: read the environment once here
// and give the gateway the same shape of configuration Workers gets.
const handler = createEnvGateway({ log: batchedLog, rateLimiter: rateLimiter() })(
  Deno.env.toObject(),
);

const server: Deno.ServeDefaultExport = {
  fetch(request: Request): Response | Promise<Response> {
    return handler(request);
  },
};

export default server;
