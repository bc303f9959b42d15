/** A gateway over a fake fetch that plays both Google's token endpoint and Vertex. */
import { expect } from 'vitest';
import { createGateway, type GatewayDependencies } from '../../src/app.ts';
import { ConfigError, parseConfig } from '../../src/config.ts';
import {
  type FakeHandler,
  fakeFetch,
  GOOGLE_TOKEN_URI,
  jsonResponse,
  KEY_PROJECT,
  keyFileJson,
  type RecordedCall,
  tokenResponse,
} from './helpers.ts';

export const GATEWAY_KEY = 'gw-app-key-3f9a1c';
export const GOOGLE_TOKEN = 'ya29.gateway-minted-token';
export const CHAT_BODY =
  '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}],"seed":12345678901234567890}';
export const COMPLETION = {
  id: 'xyz-google-id',
  object: 'chat.completion',
  created: 1,
  model: 'google/gemini-2.5-flash',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, extra_properties: { x: 1 } },
};
export const DEFAULT_URL = `https://us-central1-aiplatform.googleapis.com/v1/projects/${KEY_PROJECT}/locations/us-central1/endpoints/openapi/chat/completions`;

/** Vertex's error answer: Google's `{"error":{code,message,status}}` object. */
export const googleError = (code: number, status: string, message = `${status} from Google`) =>
  jsonResponse({ error: { code, message, status } }, code);

export interface Harness {
  app: ReturnType<typeof createGateway>;
  calls: RecordedCall[];
  /** Backoff waits the gateway asked for, in order; the harness does not really wait. */
  delays: number[];
  vertexCalls: () => RecordedCall[];
  tokenCalls: () => RecordedCall[];
}

/** A gateway whose fake fetch plays both Google's token endpoint and Vertex. */
export function harness(
  env: Record<string, unknown> = {},
  vertex: FakeHandler = () => jsonResponse(COMPLETION),
  tokenEndpoint: FakeHandler = () => tokenResponse(GOOGLE_TOKEN),
  deps: GatewayDependencies = {},
): Harness {
  const delays: number[] = [];
  const fake = fakeFetch((call) =>
    call.url === GOOGLE_TOKEN_URI ? tokenEndpoint(call) : vertex(call),
  );
  const app = createGateway(
    parseConfig({
      GOOGLE_SERVICE_ACCOUNT_KEY: keyFileJson(),
      GATEWAY_API_KEYS: GATEWAY_KEY,
      ...env,
    }),
    {
      fetch: fake.fetch,
      sleep: async (ms) => void delays.push(ms),
      random: () => 0.5,
      ...deps,
    },
  );
  return {
    app,
    calls: fake.calls,
    delays,
    vertexCalls: () => fake.calls.filter((call) => call.url !== GOOGLE_TOKEN_URI),
    tokenCalls: () => fake.calls.filter((call) => call.url === GOOGLE_TOKEN_URI),
  };
}

export function post(
  h: Harness,
  path: string,
  body: string = CHAT_BODY,
  headers: Record<string, string> = {},
): Promise<Response> {
  return Promise.resolve(
    h.app.request(path, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${GATEWAY_KEY}`,
        'content-type': 'application/json',
        ...headers,
      },
      body,
    }),
  );
}

export async function expectOpenAIError(
  response: Response,
  status: number,
  type: string,
  code?: string,
) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/json');
  const body = (await response.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.type).toBe(type);
  expect(typeof body.error.message).toBe('string');
  if (code !== undefined) expect(body.error.code).toBe(code);
  return body.error;
}

/** The ConfigError parseConfig throws for `env`; fails the test if it throws none. */
export function configError(env: Record<string, unknown>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected parseConfig to throw a ConfigError');
}
