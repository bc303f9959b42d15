import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { expectOpenAIError, harness, post } from './gateway-harness.ts';

const APP = 'https://app.example.com';

function preflight(
  h: ReturnType<typeof harness>,
  origin: string,
  headers = 'authorization, content-type',
) {
  return h.app.request('/v1/chat/completions', {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': headers,
    },
  });
}

describe('CORS', () => {
  it('is off by default: no CORS headers, and preflights are not answered', async () => {
    const h = harness();
    const response = await post(h, '/v1/chat/completions', undefined, { origin: APP });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect((await preflight(h, APP)).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a preflight from an allowed origin, echoing the SDK headers it asks for', async () => {
    const h = harness({ CORS_ORIGINS: `${APP}, https://other.example.com` });
    const asked = 'authorization, content-type, x-stainless-os, x-stainless-retry-count';
    const response = await preflight(h, APP, asked);
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(APP);
    expect(response.headers.get('access-control-allow-methods')).toContain('POST');
    expect(response.headers.get('access-control-allow-headers')).toBe(asked);
    expect(response.headers.get('access-control-max-age')).toBe('86400');
    expect(response.headers.get('vary')).toContain('Origin');
    // A preflight carries no credentials and costs no upstream call.
    expect(h.calls).toHaveLength(0);
  });

  it('says Vary: Origin on every answer when it allows a list of origins, and none for *', async () => {
    const h = harness({ CORS_ORIGINS: APP });
    const answers = [
      await post(h, '/v1/chat/completions'),
      await post(h, '/v1/chat/completions', undefined, { origin: 'https://evil.example.com' }),
      await post(h, '/v1/chat/completions', undefined, { origin: APP }),
      await post(h, '/v1/chat/completions', undefined, { authorization: 'Bearer wrong' }),
      await h.app.request('/healthz'),
      await h.app.request('/healthz', { headers: { origin: 'https://evil.example.com' } }),
      await preflight(h, 'https://evil.example.com'),
    ];
    for (const answer of answers) expect(answer.headers.get('vary')).toBe('Origin');
    const any = harness({ CORS_ORIGINS: '*' });
    expect((await post(any, '/v1/chat/completions')).headers.get('vary')).toBeNull();
    expect((await post(harness(), '/v1/chat/completions')).headers.get('vary')).toBeNull();
  });

  it('refuses a preflight from any other origin with 403', async () => {
    const h = harness({ CORS_ORIGINS: APP });
    const response = await preflight(h, 'https://evil.example.com');
    await expectOpenAIError(response, 403, 'permission_error', 'cors_origin_not_allowed');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('adds the CORS headers to answers and errors for an allowed origin only', async () => {
    const h = harness({ CORS_ORIGINS: APP });
    const ok = await post(h, '/v1/chat/completions', undefined, { origin: APP });
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    const exposed = ok.headers.get('access-control-expose-headers')?.split(/,\s*/);
    // Everything a browser app reads: the request id, timing, and its key's limits.
    expect(exposed).toEqual(
      expect.arrayContaining([
        'x-request-id',
        'server-timing',
        'retry-after',
        'x-ratelimit-limit-requests',
        'x-ratelimit-remaining-requests',
        'x-ratelimit-reset-requests',
      ]),
    );
    const denied = await post(h, '/v1/chat/completions', undefined, {
      origin: APP,
      authorization: 'Bearer wrong',
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(APP);
    const foreign = await post(h, '/v1/chat/completions', undefined, {
      origin: 'https://evil.example.com',
    });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows any origin with "*"', async () => {
    const h = harness({ CORS_ORIGINS: '*' });
    const response = await preflight(h, 'https://anything.example');
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('falls back to a fixed header list when the asked-for list is not plain header names', async () => {
    const h = harness({ CORS_ORIGINS: APP });
    const response = await preflight(h, APP, 'authorization; x-evil=1');
    expect(response.headers.get('access-control-allow-headers')).toBe(
      'authorization, content-type, x-request-id',
    );
  });

  it('refuses a CORS_ORIGINS entry that is not an origin', () => {
    expect(() => parseConfig({ CORS_ORIGINS: 'https://app.example.com/path' })).toThrow(
      /^CORS_ORIGINS /,
    );
  });
});
