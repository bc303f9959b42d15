import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  allowedTarget,
  type BodyCase,
  bodyCase,
  bodyCaseOf,
  HOSTILE_SEGMENTS,
  JSON_CT,
  jsonEqual,
  judgeBody,
  nastyBodies,
  openAIErrorProblem,
  type PathParts,
  pathParts,
  preview,
  utf8,
  VALID_BODY,
  vertexPath,
} from '../support/fuzz.ts';
import { GATEWAY_KEY, type Harness, harness } from './gateway-harness.ts';
import { GOOGLE_TOKEN_URI, jsonResponse, KEY_PROJECT, type RecordedCall } from './helpers.ts';

// Property: whatever the body (and whatever the Vertex path parameters), the gateway answers
// either a 4xx in OpenAI's error shape with nothing sent anywhere (no token exchange, no Vertex
// call), or, when the body and the target are valid by the README's contract, exactly one Vertex
// call carrying the body as the client sent it (only a bare `gemini-*` model gets `google/`, on
// the `openapi` endpoint).
// Never a 5xx. The oracle lives in test/support/fuzz.ts and does not use the gateway's code.
//
// The seed is random per run; fast-check prints it with the shrunk counterexample. Replay a
// failure with FUZZ_SEED=<seed> (and FUZZ_PATH from the report, if any).

// A few seconds on an idle machine; generous for a busy one (the default 5 s is not).
const TIMEOUT = 60_000;
const FUZZ_SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const FUZZ_PATH = process.env.FUZZ_PATH;
const runs = (numRuns: number): fc.Parameters<unknown> =>
  FUZZ_SEED === undefined
    ? { numRuns }
    : { numRuns, seed: FUZZ_SEED, ...(FUZZ_PATH ? { path: FUZZ_PATH } : {}) };

const COMPLETION = {
  id: 'fuzz',
  object: 'chat.completion',
  created: 1,
  model: 'google/gemini-2.5-flash',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
};
const SSE =
  'data: {"id":"fuzz","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';

/** The shared gateway harness, with a Vertex that answers in the shape the body asked for. */
const fuzzHarness = () =>
  harness({}, (call) =>
    /"stream"\s*:\s*true/.test(call.body)
      ? new Response(SSE, { headers: { 'content-type': 'text/event-stream' } })
      : jsonResponse(COMPLETION),
  );

function vertexUrl(t: PathParts): string {
  const host =
    t.location === 'global'
      ? 'aiplatform.googleapis.com'
      : t.location === 'us' || t.location === 'eu'
        ? `aiplatform.${t.location}.rep.googleapis.com`
        : `${t.location}-aiplatform.googleapis.com`;
  return `https://${host}${vertexPath(t)}`;
}

const DEFAULT_TARGET: PathParts = {
  version: 'v1',
  project: KEY_PROJECT,
  location: 'us-central1',
  endpoint: 'openapi',
};

interface Tally {
  valid: number;
  invalid: number;
  statuses: Map<number, number>;
}
const tally = (): Tally => ({ valid: 0, invalid: 0, statuses: new Map() });

/**
 * Sends one case and checks the property. `target` is what the path names if the gateway may
 * call it, or null when the path itself must be refused. Throws with a readable report.
 */
async function checkCase(
  h: Harness,
  path: string,
  target: PathParts | null,
  c: BodyCase,
  counts: Tally,
): Promise<void> {
  const before = h.calls.length;
  const headers: Record<string, string> = { authorization: `Bearer ${GATEWAY_KEY}` };
  if (c.contentType !== null) headers['content-type'] = c.contentType;
  const response = await h.app.request(path, {
    method: 'POST',
    headers,
    body: new Uint8Array(c.bytes),
  });
  const text = await response.text();
  const sent: RecordedCall[] = h.calls.slice(before);
  const vertex = sent.filter((call) => call.url !== GOOGLE_TOKEN_URI);
  const verdict = judgeBody(c.bytes, target === null || target.endpoint === 'openapi');
  counts.statuses.set(response.status, (counts.statuses.get(response.status) ?? 0) + 1);
  const fail = (why: string): never => {
    throw new Error(
      `${why}\n  path: ${path}\n  body: ${preview(c)}\n  answer: ${response.status} ${text.slice(0, 300)}\n  upstream calls: ${sent.map((s) => s.url).join(', ') || 'none'}`,
    );
  };

  if (target === null || !verdict.valid) {
    counts.invalid += 1;
    const problem = openAIErrorProblem(response.status, response.headers.get('content-type'), text);
    if (problem) fail(`not a 4xx in OpenAI shape: ${problem}`);
    if (sent.length > 0) fail('an invalid request made upstream calls');
    return;
  }

  counts.valid += 1;
  if (response.status !== 200) fail('a valid request was not answered 200');
  if (vertex.length !== 1) fail(`a valid request made ${vertex.length} Vertex calls`);
  const [call] = vertex as [RecordedCall];
  if (call.url !== vertexUrl(target)) fail(`forwarded to ${call.url}, not ${vertexUrl(target)}`);
  if (verdict.rewritten) {
    let forwarded: unknown;
    try {
      forwarded = JSON.parse(call.body);
    } catch {
      fail(`the forwarded body is not JSON: ${call.body.slice(0, 300)}`);
    }
    if (!jsonEqual(forwarded, verdict.forwarded)) {
      fail(`the forwarded body differs beyond the model rewrite: ${call.body.slice(0, 300)}`);
    }
  } else if (call.body !== verdict.text) {
    fail(`the forwarded body is not the client's: ${call.body.slice(0, 300)}`);
  }
}

// Thousands of request log lines would only slow the run down; errors are kept and checked.
let loggedErrors: string[] = [];
beforeEach(() => {
  loggedErrors = [];
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'info').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    loggedErrors.push(args.map(String).join(' '));
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  expect(loggedErrors.filter((line) => line.includes('unhandled'))).toEqual([]);
});

const OPENAI_ROUTE = '/v1/chat/completions';
const VERTEX_ROUTE = vertexPath({ ...DEFAULT_TARGET, version: 'v1beta1' });

describe('fuzzed request bodies', () => {
  it(
    'the hand-written corpus: 4xx in OpenAI shape, or forwarded intact when valid',
    async () => {
      const h = fuzzHarness();
      const counts = tally();
      const corpus = nastyBodies();
      for (const c of corpus) {
        await checkCase(h, OPENAI_ROUTE, DEFAULT_TARGET, c, counts);
        await checkCase(h, VERTEX_ROUTE, { ...DEFAULT_TARGET, version: 'v1beta1' }, c, counts);
      }
      expect(counts.valid + counts.invalid).toBe(corpus.length * 2);
      // The corpus is mostly invalid, with a few deliberate edges that must go through.
      expect(counts.invalid).toBeGreaterThan(counts.valid * 5);
      expect(counts.valid).toBeGreaterThanOrEqual(15 * 2);
      expect([...counts.statuses.keys()].sort()).toEqual([200, 400]);
    },
    TIMEOUT,
  );

  it(
    '4 000 generated bodies: 4xx in OpenAI shape, or forwarded intact when valid',
    async () => {
      const h = fuzzHarness();
      const counts = tally();
      await fc.assert(
        fc.asyncProperty(bodyCase, fc.boolean(), (c, vertexRoute) =>
          vertexRoute
            ? checkCase(h, VERTEX_ROUTE, { ...DEFAULT_TARGET, version: 'v1beta1' }, c, counts)
            : checkCase(h, OPENAI_ROUTE, DEFAULT_TARGET, c, counts),
        ),
        runs(4_000),
      );
      // The generator must mostly produce invalid bodies, and some valid ones to check forwarding
      // (counts include fast-check's shrinking runs only when a property failed).
      const total = counts.valid + counts.invalid;
      expect(counts.invalid / total).toBeGreaterThan(0.6);
      expect(counts.valid / total).toBeGreaterThan(0.05);
      // After the first valid request, the token is cached: one exchange in all.
      expect(h.calls.filter((call) => call.url === GOOGLE_TOKEN_URI)).toHaveLength(1);
    },
    TIMEOUT,
  );
});

describe('fuzzed Vertex path parameters', () => {
  it(
    'every hostile segment, in each position: refused with no upstream call',
    async () => {
      const h = fuzzHarness();
      const counts = tally();
      const valid = bodyCaseOf('valid', utf8(VALID_BODY), null);
      // Far longer than any HTTP front end would pass on (those are for the e2e suite to meet).
      const huge = ['a'.repeat(100_000), '%41'.repeat(30_000), '..%2F'.repeat(20_000)];
      const segments = [...HOSTILE_SEGMENTS, ...huge];
      for (const segment of segments) {
        for (const position of ['project', 'location', 'endpoint'] as const) {
          const path = vertexPath({ ...DEFAULT_TARGET, [position]: segment });
          const target = allowedTarget(path, KEY_PROJECT);
          expect(target, `${path} names a target the gateway may call`).toBeNull();
          await checkCase(h, path, null, valid, counts);
        }
      }
      expect(counts.invalid).toBe(segments.length * 3);
      expect(h.calls).toHaveLength(0);
    },
    TIMEOUT,
  );

  it(
    '3 000 generated paths and bodies: 4xx unless both are valid, then the right URL',
    async () => {
      const h = fuzzHarness();
      const counts = tally();
      const generated = fc.tuple(
        pathParts(KEY_PROJECT),
        fc.oneof(
          {
            weight: 3,
            arbitrary: fc.constant(bodyCaseOf('valid', utf8(VALID_BODY), JSON_CT)),
          },
          { weight: 1, arbitrary: bodyCase },
        ),
      );
      await fc.assert(
        fc.asyncProperty(generated, ([parts, c]) => {
          const path = vertexPath(parts);
          return checkCase(h, path, allowedTarget(path, KEY_PROJECT), c, counts);
        }),
        runs(3_000),
      );
      const total = counts.valid + counts.invalid;
      expect(counts.invalid / total).toBeGreaterThan(0.6);
      expect(counts.valid / total).toBeGreaterThan(0.05);
      for (const status of counts.statuses.keys()) expect([200, 400, 403, 404]).toContain(status);
    },
    TIMEOUT,
  );
});
