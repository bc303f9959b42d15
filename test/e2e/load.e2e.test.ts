import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deterministicText } from '../../emulator/completion.ts';
import {
  allowedTarget,
  type BodyCase,
  HOSTILE_SEGMENTS,
  invalidBodies,
  judgeBody,
  nastyBodies,
  openAIErrorProblem,
  preview,
  utf8,
  VALID_BODY,
  vertexPath,
} from '../support/fuzz.ts';
import {
  emulatorForFile,
  type RunningProcess,
  type Runtime,
  startGateway,
  waitForStats,
} from './processes.ts';

// Load and fuzz from outside, on each runtime: one gateway process, the emulator as Google.
//
// 1. 300 streams at once from a cold gateway, each of a different length, reassembled and
//    compared with the emulator's deterministic text; one token exchange for all of them.
// 2. A 2 MiB streamed answer, byte-exact.
// 3. About 1 200 malformed bodies (fixed seed) and hostile path segments: every answer a 4xx in
//    OpenAI's shape, and not one request reaches the emulator.
// 4. Afterwards the gateway is still healthy.
//
// The client is node:http with its own Agent whose maxSockets (1 024) is above the concurrency,
// so the 300 streams really run on 300 connections at once (the test measures how many were
// open at the same time); no gateway code is used on the client side.

const CLIENT_KEY = 'load-client-key-0123456789';
const STREAMS = 300;
const FUZZ_BODIES = 1_000;
const FUZZ_SEED = 20_251_125;
const FUZZ_CONCURRENCY = 8;
const TWO_MIB = 2 * 1024 * 1024;
/** Each test takes seconds (up to ~25 s under wrangler dev on a busy 2-core machine). */
const TIMEOUT = 120_000;

const agent = new Agent({ keepAlive: true, maxSockets: 1_024 });

const shared = emulatorForFile();
afterAll(() => {
  agent.destroy();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Called with the response as soon as its headers arrive. */
  onResponse?: () => void;
  /** Called with each decoded piece of the body; the answer's `text` is then left empty. */
  onData?: (piece: string) => void;
}

/** One HTTP exchange over the shared agent; the path goes on the wire exactly as given. */
function send(base: string, path: string, options: SendOptions = {}): Promise<Answer> {
  const { hostname, port } = new URL(base);
  const body = typeof options.body === 'string' ? utf8(options.body) : options.body;
  const headers: Record<string, string | number> = { ...options.headers };
  if (body) headers['content-length'] = body.byteLength;
  return new Promise((resolve, reject) => {
    const req = request({ agent, hostname, port, path, method: options.method ?? 'POST', headers });
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer to ${path} in 60 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      options.onResponse?.();
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (piece: string) => {
        if (options.onData) options.onData(piece);
        else text += piece;
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.end(body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : undefined);
  });
}

interface Reassembled {
  status: number;
  contentType: string | undefined;
  content: string;
  events: number;
  done: boolean;
  finishReason: unknown;
  errors: string[];
}

/** Parses the SSE as it arrives: content deltas joined, `[DONE]` and error events noted. */
async function streamChat(
  base: string,
  directives: Record<string, unknown>,
  hooks: { opened?: () => void; closed?: () => void } = {},
): Promise<Reassembled> {
  const result: Reassembled = {
    status: 0,
    contentType: undefined,
    content: '',
    events: 0,
    done: false,
    finishReason: undefined,
    errors: [],
  };
  const pieces: string[] = [];
  let buffer = '';
  const onEvent = (event: string) => {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data) return;
    result.events += 1;
    if (data === '[DONE]') {
      result.done = true;
      return;
    }
    const chunk = JSON.parse(data) as {
      error?: unknown;
      choices?: { delta?: { content?: string }; finish_reason?: unknown }[];
    };
    if (chunk.error !== undefined) result.errors.push(data);
    const choice = chunk.choices?.[0];
    if (typeof choice?.delta?.content === 'string') pieces.push(choice.delta.content);
    if (choice?.finish_reason) result.finishReason = choice.finish_reason;
  };
  const answer = await send(base, '/v1/chat/completions', {
    headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'Tell me a long story.' }],
      stream: true,
      emulator: directives,
    }),
    onResponse: hooks.opened,
    onData(piece) {
      buffer += piece;
      const events = buffer.split(/\r?\n\r?\n/);
      buffer = events.pop() ?? '';
      for (const event of events) onEvent(event);
    },
  });
  hooks.closed?.();
  if (buffer.trim()) onEvent(buffer);
  result.status = answer.status;
  result.contentType = answer.headers['content-type'];
  result.content = pieces.join('');
  return result;
}

/** Where two long strings first differ, for a readable failure instead of a 2 MB diff. */
function firstDifference(actual: string, expected: string): string | null {
  if (actual === expected) return null;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  return `lengths ${actual.length} vs ${expected.length}; first difference at ${i}: ${JSON.stringify(actual.slice(i, i + 40))} vs ${JSON.stringify(expected.slice(i, i + 40))}`;
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

const runtimes: Runtime[] = ['workerd', 'deno'];

describe.each(runtimes)('load and fuzz on %s', (runtime) => {
  let gateway: RunningProcess;
  const stats = () => shared.emulator.stats();

  beforeAll(async () => {
    gateway = await startGateway(runtime, shared.gatewayEnv(CLIENT_KEY));
  });
  afterAll(async () => {
    await gateway?.stop();
  });
  /**
   * wrangler dev rebuilds and restarts the Worker when a source file changes, which cuts open
   * requests and empties the token cache. Only someone editing src/ during the run causes it;
   * failure messages say so when it happened.
   */
  const reloads = () => {
    const count = gateway.output().split('Reloading local server').length - 1;
    return count > 0 ? ` (wrangler dev reloaded the Worker ${count} time(s) during the run)` : '';
  };
  beforeEach(async () => {
    await shared.emulator.admin('reset', { body: {} });
  });

  // First on purpose: the gateway process has not fetched a token yet.
  it(
    `${STREAMS} concurrent streams arrive intact, on one token exchange`,
    async () => {
      // Lengths from 1 byte to ~24 KB, chunk counts from 1 to 40. Each stream holds its first
      // chunk back two seconds, so that they overlap even when starting 300 takes a while (it
      // does under wrangler dev on a busy 2-core machine).
      const plans = Array.from({ length: STREAMS }, (_, i) => ({
        totalBytes: 1 + ((i * 7_919) % 24_000),
        chunks: 1 + (i % 40),
        firstChunkDelayMs: 2_000,
        chunkDelayMs: 2,
      }));
      let open = 0;
      let peakOpen = 0;
      let peakUpstream = 0;
      let polling = true;
      const poller = (async () => {
        while (polling) {
          peakUpstream = Math.max(peakUpstream, (await stats()).openStreams);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const started = performance.now();
      let settled: PromiseSettledResult<Reassembled>[];
      try {
        settled = await Promise.allSettled(
          plans.map((plan) =>
            streamChat(gateway.url, plan, {
              opened: () => {
                open += 1;
                peakOpen = Math.max(peakOpen, open);
              },
              closed: () => {
                open -= 1;
              },
            }),
          ),
        );
      } finally {
        polling = false;
        await poller;
      }
      const elapsed = performance.now() - started;

      const broken = settled.flatMap((outcome, i) => {
        const plan = plans[i] as (typeof plans)[number];
        if (outcome.status === 'rejected') {
          return [`stream ${i} (${plan.totalBytes} B): ${String(outcome.reason)}`];
        }
        const r = outcome.value;
        const problems = [
          r.status !== 200 && `status ${r.status}`,
          !r.contentType?.startsWith('text/event-stream') && `content-type ${r.contentType}`,
          firstDifference(r.content, deterministicText(plan.totalBytes)),
          !r.done && 'no [DONE]',
          r.finishReason !== 'stop' && `finish_reason ${String(r.finishReason)}`,
          r.errors.length > 0 && `error events ${r.errors.join(' ')}`,
        ].filter(Boolean);
        return problems.length
          ? [`stream ${i} (${plan.totalBytes} B): ${problems.join('; ')}`]
          : [];
      });
      expect(broken.slice(0, 10), `${broken.length} broken streams${reloads()}`).toEqual([]);
      // Real concurrency: most streams were open at the same time, at the client and at the
      // emulator (on an idle machine, all 300 are).
      expect(peakOpen).toBeGreaterThanOrEqual(STREAMS / 2);
      expect(peakUpstream).toBeGreaterThanOrEqual(STREAMS / 2);
      console.log(
        `${runtime}: ${STREAMS} streams in ${Math.round(elapsed)} ms, ${plans.reduce((n, p) => n + p.totalBytes, 0)} bytes of content; at most ${peakOpen} open at the client, ${peakUpstream} at the emulator`,
      );

      const after = await waitForStats(shared.emulator, (s) => s.openStreams === 0, 50);
      expect(after, reloads()).toMatchObject({
        tokenExchanges: 1,
        tokenExchangeFailures: 0,
        chatRequests: STREAMS,
        chatErrors: 0,
        streamsStarted: STREAMS,
        completedStreams: STREAMS,
        cancelledStreams: 0,
        openStreams: 0,
      });
    },
    TIMEOUT,
  );

  it(
    'streams a 2 MiB answer byte-exact',
    async () => {
      const started = performance.now();
      const r = await streamChat(gateway.url, { totalBytes: TWO_MIB, chunks: 2_048 });
      const elapsed = performance.now() - started;
      expect(r.status).toBe(200);
      expect(r.errors).toEqual([]);
      expect(r.done).toBe(true);
      expect(r.content.length).toBe(TWO_MIB);
      expect(firstDifference(r.content, deterministicText(TWO_MIB))).toBeNull();
      // 2 048 content events of about 1 KiB each, plus [DONE].
      expect(r.events).toBe(2_048 + 1);
      console.log(`${runtime}: 2 MiB in ${r.events} events, ${Math.round(elapsed)} ms`);
      expect(await waitForStats(shared.emulator, (s) => s.openStreams === 0, 50)).toMatchObject({
        completedStreams: 1,
        openStreams: 0,
      });
    },
    TIMEOUT,
  );

  it(
    'answers every malformed body and hostile path with a 4xx in OpenAI shape, forwarding none',
    async () => {
      const project = shared.serviceAccountKey.project_id as string;
      const valid = utf8(VALID_BODY);
      const cases: { path: string; body: BodyCase }[] = [
        ...invalidBodies(FUZZ_BODIES, FUZZ_SEED),
        ...nastyBodies().filter((c) => !judgeBody(c.bytes).valid),
      ].map((body, i) => ({
        // Alternate between the two routes.
        path:
          i % 2 === 0
            ? '/v1/chat/completions'
            : vertexPath({
                version: 'v1beta1',
                project,
                location: 'us-central1',
                endpoint: 'openapi',
              }),
        body,
      }));
      for (const segment of HOSTILE_SEGMENTS) {
        for (const position of ['project', 'location', 'endpoint'] as const) {
          const path = vertexPath({
            version: 'v1',
            project,
            location: 'us-central1',
            endpoint: 'openapi',
            [position]: segment,
          });
          if (allowedTarget(path, project) !== null) continue;
          cases.push({
            path,
            body: {
              label: `valid body, ${position} ${segment}`,
              bytes: valid,
              contentType: 'application/json',
            },
          });
        }
      }
      expect(cases.length).toBeGreaterThan(FUZZ_BODIES + 250);

      const failures: string[] = [];
      const statuses = new Map<number, number>();
      const started = performance.now();
      await pool(cases, FUZZ_CONCURRENCY, async ({ path, body }) => {
        const headers: Record<string, string> = { authorization: `Bearer ${CLIENT_KEY}` };
        if (body.contentType !== null) headers['content-type'] = body.contentType;
        const answer = await send(gateway.url, path, { headers, body: body.bytes });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const problem = openAIErrorProblem(
          answer.status,
          answer.headers['content-type'] ?? null,
          answer.text,
        );
        if (problem) failures.push(`${problem}\n  path: ${path}\n  body: ${preview(body)}`);
      });
      const elapsed = performance.now() - started;
      console.log(
        `${runtime}: ${cases.length} malformed requests in ${Math.round(elapsed)} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
      expect(failures.slice(0, 10)).toEqual([]);

      // Nothing reached Google: no chat request, not even a token exchange.
      const after = await stats();
      expect(after.chatRequests).toBe(0);
      expect(after.tokenExchanges).toBe(0);
      expect(await shared.emulator.requests()).toEqual([]);
      expect(gateway.output()).not.toContain('unhandled gateway error');
    },
    TIMEOUT,
  );

  it(
    'is still healthy afterwards',
    async () => {
      const health = await send(gateway.url, '/healthz', { method: 'GET' });
      expect(health.status).toBe(200);
      expect(JSON.parse(health.text)).toEqual({ status: 'ok' });

      const chat = await send(gateway.url, '/v1/chat/completions', {
        headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'gemini-2.5-flash',
          messages: [{ role: 'user', content: 'Are you still there?' }],
        }),
      });
      expect(chat.status).toBe(200);
      const completion = JSON.parse(chat.text) as { choices: { message: { content: string } }[] };
      expect(completion.choices[0]?.message.content).toContain('Are you still there?');

      const streamed = await streamChat(gateway.url, { totalBytes: 5_000, chunks: 7 });
      expect(firstDifference(streamed.content, deterministicText(5_000))).toBeNull();
      expect(streamed.done).toBe(true);

      expect(await waitForStats(shared.emulator, (s) => s.openStreams === 0, 50)).toMatchObject({
        chatRequests: 2,
        chatErrors: 0,
        openStreams: 0,
      });
    },
    TIMEOUT,
  );
});
