import { describe, expect, it } from 'vitest';
import { createGateway } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import {
  CHAT_BODY,
  COMPLETION,
  DEFAULT_URL,
  expectOpenAIError,
  GATEWAY_KEY,
  GOOGLE_TOKEN,
  harness,
  post,
} from './gateway-harness.ts';
import {
  fakeFetch,
  GOOGLE_TOKEN_URI,
  jsonResponse,
  KEY_PROJECT,
  keyFileJson,
  tokenResponse,
} from './helpers.ts';

const vertexPath = (project: string, location: string, endpoint: string, version = 'v1') =>
  `/${version}/projects/${project}/locations/${location}/endpoints/${endpoint}/chat/completions`;

describe('routes', () => {
  it('answers GET /healthz without auth and without any fetch', async () => {
    const h = harness();
    const response = await h.app.request('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(h.calls).toHaveLength(0);
  });

  it('answers POST /healthz with 405', async () => {
    const h = harness();
    const response = await h.app.request('/healthz', { method: 'POST' });
    await expectOpenAIError(response, 405, 'invalid_request_error', 'method_not_allowed');
  });

  it('answers an unknown route with a 404 in the OpenAI shape', async () => {
    const h = harness();
    const response = await h.app.request('/v1/embeddings');
    const error = await expectOpenAIError(response, 404, 'not_found_error', 'not_found');
    expect(error.param).toBeNull();
    expect(error.message).toContain('/v1/embeddings');
  });

  it.each([
    ['GET', '/healthz/'],
    ['GET', '/v1/models/'],
    ['POST', '/v1/chat/completions/'],
    ['POST', '/v1/projects/p-123456/locations/us-central1/endpoints/openapi/chat/completions/'],
  ])('answers %s %s, with its trailing slash, as an unknown route', async (method, path) => {
    const h = harness();
    const response = await h.app.request(path, {
      method,
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      ...(method === 'POST' ? { body: CHAT_BODY } : {}),
    });
    const error = await expectOpenAIError(response, 404, 'not_found_error', 'not_found');
    expect(error.message).toBe(`Unknown route: ${method} ${path}`);
    expect(h.calls).toHaveLength(0);
  });

  it('names no more than 200 characters of an unknown path, and no query', async () => {
    const h = harness();
    const response = await h.app.request(`/${'a'.repeat(5000)}?key=secret`);
    const error = await expectOpenAIError(response, 404, 'not_found_error', 'not_found');
    expect(error.message).toBe(`Unknown route: GET /${'a'.repeat(199)}`);
  });

  it.each(['GET', 'PUT', 'DELETE'])(
    'answers %s on the chat routes with 405 and Allow: POST',
    async (method) => {
      const h = harness();
      for (const path of [
        '/v1/chat/completions',
        vertexPath(KEY_PROJECT, 'us-central1', 'openapi'),
      ]) {
        const response = await h.app.request(path, { method });
        expect(response.headers.get('allow')).toBe('POST');
        await expectOpenAIError(response, 405, 'invalid_request_error', 'method_not_allowed');
      }
      expect(h.calls).toHaveLength(0);
    },
  );

  it.each(['POST', 'GET'])('answers %s on an unknown API version with 404', async (method) => {
    const h = harness();
    for (const version of ['v2', 'v1alpha', 'V1']) {
      const response = await h.app.request(
        vertexPath(KEY_PROJECT, 'us-central1', 'openapi', version),
        {
          method,
          headers: { authorization: `Bearer ${GATEWAY_KEY}` },
          body: method === 'POST' ? CHAT_BODY : null,
        },
      );
      await expectOpenAIError(response, 404, 'not_found_error');
    }
    expect(h.calls).toHaveLength(0);
  });
});

describe('path parameters', () => {
  const HOSTILE = [
    'evil.com%2Fx',
    'evil.com%2fx',
    'us-central1.evil.com',
    'us-central1@evil.com',
    '..',
    '%2E%2E',
    '%23',
    '#',
    '%3F',
    'US-CENTRAL1',
    'My-Project',
    'a%20b',
    '%20',
    '',
  ];

  for (const slot of ['project', 'location', 'endpoint'] as const) {
    it.each(HOSTILE)(`rejects ${slot} %j with 400 or 404 and makes no fetch`, async (value) => {
      const h = harness({ VERTEX_ALLOWED_PROJECTS: '*' });
      const path = vertexPath(
        slot === 'project' ? value : KEY_PROJECT,
        slot === 'location' ? value : 'us-central1',
        slot === 'endpoint' ? value : 'openapi',
      );
      const response = await post(h, path);
      expect([400, 404]).toContain(response.status);
      const error = await expectOpenAIError(
        response,
        response.status,
        response.status === 400 ? 'invalid_request_error' : 'not_found_error',
      );
      if (response.status === 400) {
        expect(error.param).toBe(slot);
        expect(error.code).toBe('invalid_path_parameter');
      }
      expect(h.calls).toHaveLength(0);
    });
  }

  it('rejects a location too long to be a host name with 400 and makes no fetch', async () => {
    const h = harness();
    const location = `${'a'.repeat(6000)}-b1`;
    const response = await post(h, vertexPath(KEY_PROJECT, location, 'openapi'));
    const error = await expectOpenAIError(response, 400, 'invalid_request_error');
    expect(error).toMatchObject({ param: 'location', code: 'invalid_path_parameter' });
    expect(String(error.message).length).toBeLessThan(300);
    expect(h.calls).toHaveLength(0);
  });

  it('rejects a project outside the allow-list with 403 and makes no fetch', async () => {
    const h = harness();
    const response = await post(h, vertexPath('someone-elses-project', 'us-central1', 'openapi'));
    await expectOpenAIError(response, 403, 'permission_error', 'project_not_allowed');
    expect(h.calls).toHaveLength(0);
  });

  it('serves a listed project and refuses the default one when a list replaces it', async () => {
    const h = harness({ VERTEX_ALLOWED_PROJECTS: 'listed-project' });
    expect((await post(h, vertexPath('listed-project', 'europe-west4', 'openapi'))).status).toBe(
      200,
    );
    expect(h.vertexCalls()[0]?.url).toBe(
      'https://europe-west4-aiplatform.googleapis.com/v1/projects/listed-project/locations/europe-west4/endpoints/openapi/chat/completions',
    );
    const refused = await post(h, vertexPath(KEY_PROJECT, 'europe-west4', 'openapi'));
    expect(refused.status).toBe(403);
    expect(h.vertexCalls()).toHaveLength(1);
  });

  it('never applies the allow-list to the default route, which names no project', async () => {
    const h = harness({ VERTEX_ALLOWED_PROJECTS: 'listed-project' });
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.vertexCalls()[0]?.url).toContain(`/projects/${KEY_PROJECT}/`);
  });
});

describe('unexpected upstream statuses', () => {
  it.each([300, 302, 304])(
    'answers an upstream %i with 502, not a 500 or the status itself',
    async (status) => {
      const h = harness(
        {},
        () => new Response(null, { status, headers: { location: 'https://elsewhere.example/' } }),
      );
      await expectOpenAIError(
        await post(h, '/v1/chat/completions'),
        502,
        'api_error',
        'upstream_unexpected_status',
      );
      // The Google bearer never follows a redirect: not to Vertex, not to the token endpoint.
      expect(h.vertexCalls()).toHaveLength(1);
      expect(h.vertexCalls()[0]?.redirect).toBe('manual');
      expect(h.tokenCalls()[0]?.redirect).toBe('manual');
    },
  );
});

describe('unexpected upstream successes', () => {
  it.each([
    [201, 'a plain request', CHAT_BODY],
    [204, 'a plain request', CHAT_BODY],
    [205, 'a plain request', CHAT_BODY],
    [204, 'a stream request', CHAT_BODY.replace(/}$/, ',"stream":true}')],
  ])('answers an upstream %i to %s with 502, not a 500', async (status, _kind, body) => {
    const h = harness(
      { UPSTREAM_MAX_RETRIES: '0' },
      () => new Response(status === 201 ? '{}' : null, { status }),
    );
    await expectOpenAIError(
      await post(h, '/v1/chat/completions', body),
      502,
      'api_error',
      'upstream_unexpected_status',
    );
  });

  it('refuses a non-streamed 200 that is not JSON rather than serve it as the gateway', async () => {
    const page = () =>
      new Response('<script>alert(1)</script>', {
        headers: { 'content-type': 'text/html; charset=utf-8' },
      });
    const h = harness({ UPSTREAM_MAX_RETRIES: '1' }, page);
    const response = await post(h, '/v1/chat/completions');
    const error = await expectOpenAIError(response, 502, 'api_error', 'upstream_not_json');
    expect(error.message).toBe(
      'Vertex AI answered with "text/html; charset=utf-8" instead of JSON.',
    );
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    // A wrong kind of answer is no transient failure: not retried.
    expect(h.vertexCalls()).toHaveLength(1);
  });

  it.each([
    'application/json',
    'application/json; charset=UTF-8',
    'Application/JSON;charset=utf-8',
  ])('passes a non-streamed 200 declared %j on', async (type) => {
    const h = harness(
      {},
      () => new Response('{"id":"x","choices":[]}', { headers: { 'content-type': type } }),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(type);
    expect(await response.text()).toBe('{"id":"x","choices":[]}');
  });
});

describe('model names by endpoint', () => {
  it('prefixes a bare Gemini name on openapi only, not on a self-deployed endpoint', async () => {
    const h = harness();
    expect((await post(h, vertexPath(KEY_PROJECT, 'us-central1', 'openapi'))).status).toBe(200);
    expect((await post(h, vertexPath(KEY_PROJECT, 'us-central1', 'my-vllm'))).status).toBe(200);
    const models = h.vertexCalls().map((call) => JSON.parse(call.body).model);
    expect(models).toEqual(['google/gemini-2.5-flash', 'gemini-2.5-flash']);
    expect(h.vertexCalls()[1]?.body).toBe(CHAT_BODY);
  });
});

describe('upstream URL', () => {
  it('sends the default route to the key project in us-central1, v1, openapi', async () => {
    const h = harness();
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(200);
    expect(h.vertexCalls().map((call) => call.url)).toEqual([DEFAULT_URL]);
    expect(h.vertexCalls()[0]?.method).toBe('POST');
  });

  it('honours VERTEX_PROJECT and VERTEX_LOCATION on the default route', async () => {
    const h = harness({ VERTEX_PROJECT: 'chosen-project', VERTEX_LOCATION: 'global' });
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.vertexCalls()[0]?.url).toBe(
      'https://aiplatform.googleapis.com/v1/projects/chosen-project/locations/global/endpoints/openapi/chat/completions',
    );
  });

  it('uses the VERTEX_BASE_URL origin when set', async () => {
    const h = harness({ VERTEX_BASE_URL: 'http://127.0.0.1:8787/' });
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.vertexCalls()[0]?.url).toBe(
      `http://127.0.0.1:8787/v1/projects/${KEY_PROJECT}/locations/us-central1/endpoints/openapi/chat/completions`,
    );
  });

  it.each([
    ['us', 'aiplatform.us.rep.googleapis.com'],
    ['eu', 'aiplatform.eu.rep.googleapis.com'],
    ['global', 'aiplatform.googleapis.com'],
    ['asia-northeast1', 'asia-northeast1-aiplatform.googleapis.com'],
  ])('routes location %s to %s', async (location, host) => {
    const h = harness();
    expect((await post(h, vertexPath(KEY_PROJECT, location, 'openapi'))).status).toBe(200);
    expect(h.vertexCalls()[0]?.url).toBe(
      `https://${host}/v1/projects/${KEY_PROJECT}/locations/${location}/endpoints/openapi/chat/completions`,
    );
  });

  it('keeps v1beta1 and a self-deployed endpoint id', async () => {
    const h = harness();
    const body =
      '{"model":"meta/llama-3.3-70b-instruct-maas","messages":[{"role":"user","content":"x"}]}';
    const path = vertexPath(KEY_PROJECT, 'us-east5', '1234567890123', 'v1beta1');
    expect((await post(h, path, body)).status).toBe(200);
    expect(h.vertexCalls()[0]?.url).toBe(`https://us-east5-aiplatform.googleapis.com${path}`);
    expect(h.vertexCalls()[0]?.body).toBe(body);
  });
});

describe('upstream request', () => {
  it('carries only the Google bearer, content-type and accept', async () => {
    const h = harness();
    const response = await post(h, '/v1/chat/completions', CHAT_BODY, {
      cookie: 'session=caller-cookie',
      connection: 'keep-alive, x-secret-hop',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      'x-secret-hop': '1',
      'x-api-key': 'caller-x-api-key',
      'x-goog-user-project': 'billing-project',
      'x-forwarded-for': '203.0.113.9',
      'user-agent': 'caller-agent/1.0',
      origin: 'https://caller.example',
    });
    expect(response.status).toBe(200);
    const [call] = h.vertexCalls();
    expect(call).toBeDefined();
    expect([...(call?.headers.keys() ?? [])].sort()).toEqual([
      'accept',
      'authorization',
      'content-type',
    ]);
    expect(call?.headers.get('authorization')).toBe(`Bearer ${GOOGLE_TOKEN}`);
    expect(call?.headers.get('content-type')).toBe('application/json');
    expect(call?.headers.get('accept')).toBe('application/json');
    const everything = JSON.stringify([...(call?.headers.entries() ?? [])]) + (call?.url ?? '');
    for (const secret of [
      GATEWAY_KEY,
      'caller-cookie',
      'cHJveHk6c2VjcmV0',
      'caller-x-api-key',
      'billing-project',
    ]) {
      expect(everything).not.toContain(secret);
    }
  });

  it('forwards the body with only the model rewritten, large integers intact', async () => {
    const h = harness();
    await post(h, '/v1/chat/completions');
    expect(h.vertexCalls()[0]?.body).toBe(
      CHAT_BODY.replace('"gemini-2.5-flash"', '"google/gemini-2.5-flash"'),
    );
  });

  it('exchanges one token and reuses it for later requests', async () => {
    const h = harness();
    for (let i = 0; i < 3; i++) expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.tokenCalls()).toHaveLength(1);
    expect(h.vertexCalls()).toHaveLength(3);
    expect(h.tokenCalls()[0]?.body).toContain(
      'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer',
    );
  });

  it('cancels the upstream call when the client goes away', async () => {
    let upstreamSignal: AbortSignal | undefined;
    const doFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input) === GOOGLE_TOKEN_URI) return tokenResponse(GOOGLE_TOKEN);
      upstreamSignal = init?.signal ?? undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('data: {"choices":[]}\n\n'));
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    }) as typeof fetch;
    const app = createGateway(
      parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(), GATEWAY_API_KEYS: GATEWAY_KEY }),
      { fetch: doFetch },
    );
    const client = new AbortController();
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}` },
      body: CHAT_BODY.replace(/}$/, ',"stream":true}'),
      signal: client.signal,
    });
    expect(response.status).toBe(200);
    expect(upstreamSignal?.aborted).toBe(false);
    client.abort();
    expect(upstreamSignal?.aborted).toBe(true);
  });
});

describe('responses', () => {
  it('passes a JSON completion through', async () => {
    const h = harness({}, () =>
      jsonResponse(COMPLETION, 200, { 'set-cookie': 'g=1', 'x-goog-internal': 'secret-ish' }),
    );
    const response = await post(h, '/v1/chat/completions');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(response.headers.get('x-goog-internal')).toBeNull();
    expect(await response.json()).toEqual(COMPLETION);
  });

  it('streams SSE through unchanged with text/event-stream', async () => {
    const sse =
      'data: {"id":"a","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"he"}}]}\r\n\r\n' +
      'data: {"id":"a","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"llo"}}]}\n\n' +
      'data: [DONE]\n\n';
    const h = harness(
      {},
      () => new Response(sse, { headers: { 'content-type': 'text/event-stream' } }),
    );
    const body =
      '{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}';
    const response = await post(h, '/v1/chat/completions', body);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(await response.text()).toBe(sse);
    expect(h.vertexCalls()[0]?.headers.get('accept')).toBe('text/event-stream');
  });

  it.each([
    ['object', (e: object) => e],
    ['array', (e: object) => [e]],
  ])(
    'turns a Vertex error (%s form) into an OpenAI error with the same status',
    async (_form, wrap) => {
      const googleError = {
        error: {
          code: 429,
          message: 'Resource exhausted. Please try again later.',
          status: 'RESOURCE_EXHAUSTED',
        },
      };
      const h = harness({}, () => jsonResponse(wrap(googleError), 429, { 'retry-after': '3' }));
      const response = await post(h, '/v1/chat/completions');
      expect(response.headers.get('retry-after')).toBe('3');
      const error = await expectOpenAIError(
        response,
        429,
        'rate_limit_error',
        'resource_exhausted',
      );
      expect(error.message).toBe('Resource exhausted. Please try again later.');
    },
  );

  it('answers 502 upstream_unreachable when Vertex cannot be reached', async () => {
    const h = harness({}, () => {
      throw new TypeError('fetch failed');
    });
    await expectOpenAIError(
      await post(h, '/v1/chat/completions'),
      502,
      'api_error',
      'upstream_unreachable',
    );
  });

  it('answers 502 token_exchange_failed and never calls Vertex when the exchange fails', async () => {
    const h = harness({}, undefined, () =>
      jsonResponse({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }, 400),
    );
    const error = await expectOpenAIError(
      await post(h, '/v1/chat/completions'),
      502,
      'api_error',
      'token_exchange_failed',
    );
    expect(error.message).toContain('Invalid JWT Signature.');
    expect(h.vertexCalls()).toHaveLength(0);
  });

  // VERTEX.md: on a Vertex 401, drop the cached token and retry once.
  it('drops the cached token after a Vertex 401 and retries once with a fresh token', async () => {
    let minted = 0;
    const h = harness(
      {},
      (call) =>
        call.headers.get('authorization') === 'Bearer ya29.revoked'
          ? jsonResponse(
              { error: { code: 401, message: 'expired', status: 'UNAUTHENTICATED' } },
              401,
            )
          : jsonResponse(COMPLETION),
      () => tokenResponse(++minted === 1 ? 'ya29.revoked' : 'ya29.fresh'),
    );
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
  });

  it("answers 502, not the client-blaming 401, when Vertex refuses the gateway's fresh token too", async () => {
    const refused = () =>
      jsonResponse(
        { error: { code: 401, message: 'Request had invalid authentication credentials.' } },
        401,
      );
    const h = harness({}, refused);
    const response = await post(h, '/v1/chat/completions');
    const error = await expectOpenAIError(
      response,
      502,
      'api_error',
      'upstream_credentials_refused',
    );
    expect(error.message).toContain('service account');
    expect(error.message).toContain('Request had invalid authentication credentials.');
    expect(h.tokenCalls()).toHaveLength(2);
    expect(h.vertexCalls()).toHaveLength(2);
    // A caller's own token that Vertex refuses is the caller's problem: its 401 stands.
    const passthrough = harness({ ALLOW_TOKEN_PASSTHROUGH: 'true' }, refused);
    const own = await post(passthrough, '/v1/chat/completions', CHAT_BODY, {
      authorization: 'Bearer ya29.callers-own',
    });
    expect(own.status).toBe(401);
    expect(passthrough.vertexCalls()).toHaveLength(1);
  });
});

describe('client authentication', () => {
  it('answers a request without a key with 401 and makes no fetch', async () => {
    const h = harness();
    const response = await h.app.request('/v1/chat/completions', {
      method: 'POST',
      body: CHAT_BODY,
    });
    await expectOpenAIError(response, 401, 'authentication_error', 'missing_api_key');
    expect(h.calls).toHaveLength(0);
  });

  it('answers a wrong key with 401 invalid_api_key that does not echo it', async () => {
    const h = harness();
    const response = await post(h, '/v1/chat/completions', CHAT_BODY, {
      authorization: 'Bearer sk-wrong-ab12cd',
    });
    const error = await expectOpenAIError(response, 401, 'authentication_error', 'invalid_api_key');
    expect(error.message).not.toContain('sk-wrong-ab12cd');
    expect(h.calls).toHaveLength(0);
  });

  it('answers 503 when neither keys nor passthrough are configured', async () => {
    const fake = fakeFetch(() => jsonResponse(COMPLETION));
    const app = createGateway(parseConfig({ GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson() }), {
      fetch: fake.fetch,
    });
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer anything' },
      body: CHAT_BODY,
    });
    await expectOpenAIError(response, 503, 'server_error', 'gateway_not_configured');
    expect(fake.calls).toHaveLength(0);
  });

  it('rejects an invalid body with 400 before any fetch', async () => {
    const h = harness();
    const error = await expectOpenAIError(
      await post(h, '/v1/chat/completions', '{"model":"gemini-2.5-flash","messages":[]}'),
      400,
      'invalid_request_error',
      'empty_array',
    );
    expect(error.param).toBe('messages');
    expect(h.calls).toHaveLength(0);
  });
});

describe('token passthrough', () => {
  it("forwards the caller's bearer and makes no token exchange (no service account)", async () => {
    const fake = fakeFetch(() => jsonResponse(COMPLETION));
    const app = createGateway(
      parseConfig({ ALLOW_TOKEN_PASSTHROUGH: 'true', VERTEX_PROJECT: 'caller-project' }),
      { fetch: fake.fetch },
    );
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer ya29.callers-own-token' },
      body: CHAT_BODY,
    });
    expect(response.status).toBe(200);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]?.url).toBe(
      'https://us-central1-aiplatform.googleapis.com/v1/projects/caller-project/locations/us-central1/endpoints/openapi/chat/completions',
    );
    expect(fake.calls[0]?.headers.get('authorization')).toBe('Bearer ya29.callers-own-token');
  });

  it('uses passthrough for unknown bearers and the service account for gateway keys', async () => {
    const h = harness({ ALLOW_TOKEN_PASSTHROUGH: 'true' });
    expect(
      (await post(h, '/v1/chat/completions', CHAT_BODY, { authorization: 'Bearer ya29.caller' }))
        .status,
    ).toBe(200);
    expect(h.tokenCalls()).toHaveLength(0);
    expect(h.vertexCalls()[0]?.headers.get('authorization')).toBe('Bearer ya29.caller');
    expect((await post(h, '/v1/chat/completions')).status).toBe(200);
    expect(h.tokenCalls()).toHaveLength(1);
    expect(h.vertexCalls()[1]?.headers.get('authorization')).toBe(`Bearer ${GOOGLE_TOKEN}`);
  });

  it('still applies the allow-list to passthrough callers', async () => {
    const fake = fakeFetch(() => jsonResponse(COMPLETION));
    const app = createGateway(
      parseConfig({ ALLOW_TOKEN_PASSTHROUGH: 'true', VERTEX_PROJECT: 'caller-project' }),
      { fetch: fake.fetch },
    );
    const response = await app.request(vertexPath('other-project', 'us-central1', 'openapi'), {
      method: 'POST',
      headers: { authorization: 'Bearer ya29.caller' },
      body: CHAT_BODY,
    });
    await expectOpenAIError(response, 403, 'permission_error', 'project_not_allowed');
    expect(fake.calls).toHaveLength(0);
  });

  it('answers the default route with 500 when there is no default project', async () => {
    const fake = fakeFetch(() => jsonResponse(COMPLETION));
    const app = createGateway(parseConfig({ ALLOW_TOKEN_PASSTHROUGH: 'true' }), {
      fetch: fake.fetch,
    });
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer ya29.caller' },
      body: CHAT_BODY,
    });
    await expectOpenAIError(response, 500, 'server_error', 'default_project_not_configured');
    expect(fake.calls).toHaveLength(0);
  });
});
