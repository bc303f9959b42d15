import type { EmulatorStats } from '../../emulator/state.ts';
import { createEnvGateway } from '../../src/env-gateway.ts';
import { GatewayError } from '../../src/errors.ts';
import { createServiceAccountTokenSource } from '../../src/google/access-token.ts';
import { parseServiceAccountKey } from '../../src/google/service-account-key.ts';
import { startEmulatorProcess } from './emulator-process.ts';

// The gateway's own code running in Deno (its fetch, WebCrypto and streams), against the emulator
// in a separate process. `deno serve` of the runtime entry is covered by the e2e suite.

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const CLIENT_KEY = 'deno-test-key';
const hello = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Why is the sky blue?' }],
};

function chat(body: unknown, key = CLIENT_KEY, path = '/v1/chat/completions'): Request {
  return new Request(`http://gateway.test${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
}

Deno.test('gateway in Deno', async (t) => {
  const emulator = await startEmulatorProcess();
  try {
    const key = await emulator.admin<Record<string, string>>('service-accounts', {
      method: 'POST',
    });
    const env = {
      GOOGLE_SERVICE_ACCOUNT_KEY: JSON.stringify(key),
      GATEWAY_API_KEYS: CLIENT_KEY,
      ALLOW_TOKEN_PASSTHROUGH: 'true',
      VERTEX_BASE_URL: emulator.url,
    };
    const stats = () => emulator.admin<EmulatorStats>('stats');

    await t.step('40 concurrent cold requests share one token exchange', async () => {
      const handler = createEnvGateway()(env);
      const before = await stats();
      const responses = await Promise.all(Array.from({ length: 40 }, () => handler(chat(hello))));
      assertEquals(
        responses.map((r) => r.status),
        Array(40).fill(200),
        'statuses',
      );
      await Promise.all(responses.map((r) => r.arrayBuffer()));
      const after = await stats();
      assertEquals(after.tokenExchanges - before.tokenExchanges, 1, 'token exchanges');
    });

    const handler = createEnvGateway()(env);

    await t.step('a JSON completion reaches the seed path with the version kept', async () => {
      const response = await handler(
        chat(
          hello,
          CLIENT_KEY,
          '/v1beta1/projects/emulator-project/locations/global/endpoints/openapi/chat/completions',
        ),
      );
      assertEquals(response.status, 200, 'status');
      const body = await response.json();
      assert(
        body.choices[0].message.content.includes('Why is the sky blue?'),
        'answer mentions the question',
      );
      const requests = await emulator.admin<{ path: string }[]>('requests');
      assertEquals(
        requests.at(-1)?.path,
        '/v1beta1/projects/emulator-project/locations/global/endpoints/openapi/chat/completions',
        'upstream path',
      );
    });

    await t.step('SSE chunks arrive one by one, not buffered', async () => {
      const response = await handler(
        chat({
          ...hello,
          stream: true,
          emulator: { chunks: 4, firstChunkDelayMs: 0, chunkDelayMs: 300 },
        }),
      );
      assertEquals(response.status, 200, 'status');
      assert(
        response.headers.get('content-type')?.startsWith('text/event-stream'),
        'SSE content type',
      );
      assert(response.body, 'a body');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const first = await reader.read();
      assert(first.value?.startsWith('data: '), 'first read is an SSE event');
      // The upstream is still sending: the first chunk did not wait for the rest.
      assertEquals((await stats()).openStreams, 1, 'open upstream streams after the first chunk');
      let rest = '';
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
      assert(rest.trimEnd().endsWith('data: [DONE]'), 'stream ends with [DONE]');
    });

    await t.step('a client that leaves cancels the upstream stream', async () => {
      const before = await stats();
      const controller = new AbortController();
      const request = new Request(
        chat({ ...hello, stream: true, emulator: { chunks: 50, chunkDelayMs: 100 } }),
        {
          signal: controller.signal,
        },
      );
      const response = await handler(request);
      assert(response.body, 'a body');
      const reader = response.body.getReader();
      await reader.read();
      await reader.cancel();
      controller.abort();
      let after = await stats();
      for (let i = 0; i < 40 && after.cancelledStreams === before.cancelledStreams; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        after = await stats();
      }
      assertEquals(
        after.cancelledStreams - before.cancelledStreams,
        1,
        'cancelled upstream streams',
      );
    });

    await t.step('Vertex errors become OpenAI errors with the upstream status', async () => {
      const response = await handler(
        chat({ ...hello, emulator: { status: 403, message: 'Permission denied on resource.' } }),
      );
      assertEquals(response.status, 403, 'status');
      assertEquals(
        await response.json(),
        {
          error: {
            message: 'Permission denied on resource.',
            type: 'permission_error',
            param: null,
            code: 'permission_denied',
          },
        },
        'error body',
      );
    });

    await t.step(
      'a caller token is passed through when allowed, and a bad one gets 401 back',
      async () => {
        const { access_token } = await emulator.admin<{ access_token: string }>('access-tokens', {
          method: 'POST',
        });
        assertEquals((await handler(chat(hello, access_token))).status, 200, 'own token');
        const rejected = await handler(chat(hello, 'not-a-google-token'));
        assertEquals(rejected.status, 401, 'unknown token');
        assertEquals((await rejected.json()).error.type, 'authentication_error', 'error type');
      },
    );

    await t.step('bad input is a 400 in OpenAI shape and never reaches Vertex', async () => {
      const before = await stats();
      const response = await handler(chat({ model: 'gemini-2.5-flash', messages: [] }));
      assertEquals(response.status, 400, 'status');
      assertEquals((await response.json()).error.param, 'messages', 'param');
      assertEquals((await stats()).chatRequests, before.chatRequests, 'upstream requests');
    });

    await t.step("a token endpoint past the exchange's deadline is a 504", async () => {
      // Deno's fetch must reject on AbortSignal.timeout with a TimeoutError, which the exchange
      // reports as such instead of retrying it as a network failure.
      await emulator.admin('reset', { method: 'POST' });
      await emulator.admin('faults', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ target: 'token', headersDelayMs: 1200 }),
      });
      const tokens = createServiceAccountTokenSource(parseServiceAccountKey(JSON.stringify(key)), {
        timeoutMs: 300,
      });
      const error = await tokens.getToken().then(
        () => null,
        (failure: unknown) => failure,
      );
      assert(error instanceof GatewayError, `a GatewayError, not ${String(error)}`);
      assertEquals(error.status, 504, 'status');
      assert(error.message.includes('did not answer in time'), error.message);
      // The emulator answers that exchange later, to nobody: wait, so no later step counts it.
      for (let i = 0; i < 40 && (await stats()).tokenExchanges === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await emulator.admin('reset', { method: 'POST' });
    });

    await t.step('nothing configured fails closed', async () => {
      const response = await createEnvGateway()({})(chat(hello));
      assertEquals(response.status, 503, 'status');
    });
  } finally {
    await emulator.stop();
  }
});
