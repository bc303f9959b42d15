import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  arrivals,
  codeBlocks,
  EXAMPLES_DIR,
  type ExampleRun,
  expectedAnswer,
  readme,
  runExample,
  sseContent,
} from './clients.ts';
import {
  emulatorForFile,
  freePort,
  launch,
  ROOT,
  type RunningProcess,
  type Runtime,
  startGateway,
  stopProcess,
} from './processes.ts';

// Every client example the README shows is a file in examples/, and each one that runs in Node
// runs here against the real gateway on both runtimes, with the emulator as Google.

const CLIENT_KEY = 'clients-e2e-key-0123456789';
const DENO = join(ROOT, 'node_modules/.bin/deno');
// Chunks 100 ms apart, so a client that streams prints its answer in several separate writes.
const CHUNK_DELAY_MS = 100;

interface NodeExample {
  file: string;
  /** The prompts the example sends, in order; the last one is streamed. */
  prompts: [plain: string, streamed: string];
}

const NODE_EXAMPLES: NodeExample[] = [
  { file: 'openai-node.mjs', prompts: ['Why is the sky blue?', 'Write a haiku about the sea.'] },
  {
    file: 'vercel-ai-sdk.mjs',
    prompts: ['Hello there!', 'Explain edge computing in two sentences.'],
  },
  {
    file: 'langchain.mjs',
    prompts: ['What is a vector database?', 'Write a limerick about a gateway.'],
  },
];

describe('the README', () => {
  const blocks = codeBlocks(readme());
  const files = readdirSync(EXAMPLES_DIR).filter((f) => /\.(mjs|py|sh|ts)$/.test(f));

  it('has an example for every client the issue names', () => {
    expect(files.sort()).toEqual([
      'curl-stream.sh',
      'deno-deploy.ts',
      'langchain.mjs',
      'openai-node.mjs',
      'openai-python.py',
      'vercel-ai-sdk.mjs',
    ]);
  });

  it.each(files)('shows examples/%s exactly as the file is', (file) => {
    expect(blocks).toContain(readFileSync(join(EXAMPLES_DIR, file), 'utf8'));
  });

  const python = spawnSync('python3', ['--version']).status === 0;
  it.skipIf(!python)('has a Python example that compiles', () => {
    // compile() without writing __pycache__ into examples/; the openai package is not needed.
    const file = join(EXAMPLES_DIR, 'openai-python.py');
    const result = spawnSync(
      'python3',
      ['-c', 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")', file],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
  });
});

const shared = emulatorForFile();
const gatewayEnv = () => shared.gatewayEnv(CLIENT_KEY);

/** The examples' requests cannot carry emulator directives: a queued fault paces the chunks. */
async function paceChunks(): Promise<void> {
  await shared.emulator.admin('reset', { body: {} });
  await shared.emulator.admin('faults', {
    body: { target: 'chat', chunkDelayMs: CHUNK_DELAY_MS, times: 100 },
  });
}

function expectSuccess(run: ExampleRun): void {
  expect(run.code, `exit code; stderr:\n${run.stderr}`).toBe(0);
}

/** Runs the examples against one gateway: every Node example, then curl. */
function exampleTests(gatewayUrl: () => string): void {
  beforeEach(paceChunks);

  it.each(NODE_EXAMPLES)('$file answers, then streams', async ({ file, prompts }) => {
    const run = await runExample(file, { GATEWAY_URL: gatewayUrl(), GATEWAY_API_KEY: CLIENT_KEY });
    expectSuccess(run);
    const [plain, streamed] = prompts;
    expect(run.stdout).toContain(expectedAnswer(plain));
    expect(run.stdout).toContain(expectedAnswer(streamed));
    // The plain answer arrived once, then the streamed one piece by piece as the emulator sent it.
    expect(arrivals(run, CHUNK_DELAY_MS / 2)).toBeGreaterThanOrEqual(5);

    const forwarded = await shared.emulator.requests();
    expect(forwarded.map((r) => r.body.stream === true)).toEqual([false, true]);
    expect(forwarded.map((r) => r.body.model)).toEqual([
      'google/gemini-2.5-flash',
      'google/gemini-2.5-flash',
    ]);
  });

  it('curl-stream.sh prints the answer as server-sent events, chunk by chunk', async () => {
    const run = await runExample('curl-stream.sh', {
      GATEWAY_URL: gatewayUrl(),
      GATEWAY_API_KEY: CLIENT_KEY,
    });
    expectSuccess(run);
    const pieces = sseContent(run.stdout);
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    expect(pieces.join('')).toBe(expectedAnswer('Why is the sky blue?'));
    expect(run.stdout.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(arrivals(run, CHUNK_DELAY_MS / 2)).toBeGreaterThanOrEqual(4);
  });

  it('curl-stream.sh fails loudly with a wrong key', async () => {
    const run = await runExample('curl-stream.sh', {
      GATEWAY_URL: gatewayUrl(),
      GATEWAY_API_KEY: 'not-a-key',
    });
    expect(run.code).not.toBe(0);
    expect(run.stdout).toContain('invalid_api_key');
  });
}

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('the client examples against the gateway on %s', (runtime) => {
  let gateway: RunningProcess;
  beforeAll(async () => {
    gateway = await startGateway(runtime, gatewayEnv());
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  exampleTests(() => gateway.url);
});

// Deno Deploy starts its entrypoint like `deno run` (with every permission): this is that, here.
describe('examples/deno-deploy.ts, the Deno Deploy entry, under `deno run -A`', () => {
  let gateway: RunningProcess;
  beforeAll(async () => {
    const port = await freePort();
    const { child, output } = await launch(
      DENO,
      ['run', '-A', 'examples/deno-deploy.ts'],
      /Listening on http:\/\/127\.0\.0\.1:\d+/,
      // Deno.serve with no options listens where DENO_SERVE_ADDRESS says (8000 by default).
      { ...gatewayEnv(), DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}` },
    );
    gateway = { url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(child) };
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it('is needed: `deno run` on the `deno serve` entry only warns, and exits', () => {
    const run = spawnSync(DENO, ['run', '-A', 'src/runtime/deno.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(
      'Detected export default { fetch }, did you mean to run "deno serve"?',
    );
  });

  it('type-checks', () => {
    const check = spawnSync(DENO, ['check', 'examples/deno-deploy.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(check.status, check.stderr).toBe(0);
  });

  it('serves health checks', async () => {
    const response = await fetch(`${gateway.url}/healthz`);
    expect(response.status).toBe(200);
  });

  it('does not warn that it was meant for `deno serve`', () => {
    expect(gateway.output()).not.toContain('did you mean to run "deno serve"');
  });

  exampleTests(() => gateway.url);
});
