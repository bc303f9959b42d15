import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { COMPLETION, expectOpenAIError, GATEWAY_KEY, harness, post } from './gateway-harness.ts';
import { jsonResponse } from './helpers.ts';

const get = (h: ReturnType<typeof harness>, path: string, key: string | null = GATEWAY_KEY) =>
  h.app.request(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });

describe('GET /v1/models', () => {
  it('lists the default Gemini models in the OpenAI list shape', async () => {
    const h = harness();
    const response = await get(h, '/v1/models');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { object: string; data: Record<string, unknown>[] };
    expect(body.object).toBe('list');
    expect(body.data.map((m) => m.id)).toEqual([
      'google/gemini-2.5-pro',
      'google/gemini-2.5-flash',
      'google/gemini-2.5-flash-lite',
    ]);
    expect(body.data[0]).toEqual({
      id: 'google/gemini-2.5-pro',
      object: 'model',
      created: 0,
      owned_by: 'google',
    });
    expect(h.calls).toHaveLength(0);
  });

  it('lists MODELS, then the aliases, each once', async () => {
    const h = harness({
      MODELS: 'google/gemini-2.5-flash, meta/llama-3.3-70b-instruct-maas',
      MODEL_ALIASES: '{"gpt-4o":"google/gemini-2.5-pro","google/gemini-2.5-flash":"x/y"}',
    });
    const body = (await (await get(h, '/v1/models')).json()) as {
      data: { id: string; owned_by: string }[];
    };
    expect(body.data).toEqual([
      expect.objectContaining({ id: 'google/gemini-2.5-flash', owned_by: 'google' }),
      expect.objectContaining({ id: 'meta/llama-3.3-70b-instruct-maas', owned_by: 'meta' }),
      expect.objectContaining({ id: 'gpt-4o', owned_by: 'google' }),
    ]);
  });

  it('needs the same client key as chat', async () => {
    const h = harness();
    await expectOpenAIError(await get(h, '/v1/models', null), 401, 'authentication_error');
    await expectOpenAIError(await get(h, '/v1/models', 'wrong'), 401, 'authentication_error');
  });

  it('retrieves one model by an id that contains a slash, or 404s', async () => {
    const h = harness();
    const one = await get(h, '/v1/models/google/gemini-2.5-flash');
    expect(one.status).toBe(200);
    expect(((await one.json()) as { id: string }).id).toBe('google/gemini-2.5-flash');
    const missing = await get(h, '/v1/models/google/gemini-0-nope');
    const error = await expectOpenAIError(missing, 404, 'not_found_error', 'model_not_found');
    expect(error.param).toBe('model');
  });

  it('finds a bare Gemini name, as chat takes it, under its google/ id', async () => {
    const h = harness();
    const bare = await get(h, '/v1/models/gemini-2.5-flash');
    expect(bare.status).toBe(200);
    expect(((await bare.json()) as { id: string }).id).toBe('google/gemini-2.5-flash');
    const missing = await get(h, '/v1/models/gemini-0-nope');
    await expectOpenAIError(missing, 404, 'not_found_error', 'model_not_found');
  });

  it('answers POST with 405', async () => {
    const h = harness();
    const response = await h.app.request('/v1/models', { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('MODEL_ALIASES', () => {
  it('rewrites an aliased model before forwarding, leaving every other byte alone', async () => {
    const h = harness({
      MODEL_ALIASES: '{"gpt-4o":"google/gemini-2.5-pro","fast":"gemini-2.5-flash"}',
    });
    const body =
      '{"model": "gpt-4o","messages":[{"role":"user","content":"hi"}],"seed":12345678901234567890}';
    expect((await post(h, '/v1/chat/completions', body)).status).toBe(200);
    expect(h.vertexCalls()[0]?.body).toBe(body.replace('"gpt-4o"', '"google/gemini-2.5-pro"'));
    // An alias to a bare Gemini name still gets the publisher prefix.
    await post(h, '/v1/chat/completions', body.replace('gpt-4o', 'fast'));
    expect(JSON.parse(h.vertexCalls()[1]?.body ?? '{}').model).toBe('google/gemini-2.5-flash');
  });

  it('leaves models without an alias as they are', async () => {
    const h = harness({ MODEL_ALIASES: '{"gpt-4o":"google/gemini-2.5-pro"}' }, () =>
      jsonResponse(COMPLETION),
    );
    const body =
      '{"model":"meta/llama-3.3-70b-instruct-maas","messages":[{"role":"user","content":"hi"}]}';
    await post(h, '/v1/chat/completions', body);
    expect(h.vertexCalls()[0]?.body).toBe(body);
  });

  it.each([
    'not json',
    '["gpt-4o"]',
    '{"gpt-4o": 5}',
    '{"gpt 4o": "google/gemini-2.5-pro"}',
    '{"gpt-4o": "../../evil"}',
  ])('refuses %s, naming the variable', (value) => {
    expect(() => parseConfig({ MODEL_ALIASES: value })).toThrow(/^MODEL_ALIASES /);
  });

  it('refuses a MODELS entry that is not a model name', () => {
    expect(() => parseConfig({ MODELS: 'google/gemini-2.5-flash, bad name' })).toThrow(/^MODELS /);
  });
});
