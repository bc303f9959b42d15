import { describe, expect, it } from 'vitest';
import { gatewayErrorFromVertex } from '../../src/vertex/upstream-error.ts';

const googleError = (code: number, status: string, message: string) => ({
  error: { code, message, status },
});

describe('gatewayErrorFromVertex', () => {
  it.each([
    [400, 'INVALID_ARGUMENT', 'invalid_request_error'],
    [401, 'UNAUTHENTICATED', 'authentication_error'],
    [403, 'PERMISSION_DENIED', 'permission_error'],
    [404, 'NOT_FOUND', 'not_found_error'],
    [429, 'RESOURCE_EXHAUSTED', 'rate_limit_error'],
    [500, 'INTERNAL', 'api_error'],
    [503, 'UNAVAILABLE', 'api_error'],
    [504, 'DEADLINE_EXCEEDED', 'api_error'],
  ] as const)('keeps %i %s with type %s (object form)', async (status, googleStatus, type) => {
    const message = `Google says ${googleStatus.toLowerCase()} #${status}`;
    const error = await gatewayErrorFromVertex(
      Response.json(googleError(status, googleStatus, message), { status }),
    );
    expect(error.status).toBe(status);
    expect(error.type).toBe(type);
    expect(error.message).toBe(message);
    expect(error.code).toBe(googleStatus.toLowerCase());
    expect(error.param).toBeNull();
  });

  it('reads the one-element array form', async () => {
    const body = [
      googleError(
        400,
        'INVALID_ARGUMENT',
        'Invalid JSON payload received. Unknown name "store": Cannot find field.',
      ),
    ];
    const error = await gatewayErrorFromVertex(Response.json(body, { status: 400 }));
    expect(error.status).toBe(400);
    expect(error.type).toBe('invalid_request_error');
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toBe(
      'Invalid JSON payload received. Unknown name "store": Cannot find field.',
    );
  });

  it("keeps Google's message when details are present", async () => {
    const body = {
      error: {
        code: 401,
        message: 'Request had invalid authentication credentials.',
        status: 'UNAUTHENTICATED',
        details: [
          { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_EXPIRED' },
        ],
      },
    };
    const error = await gatewayErrorFromVertex(Response.json(body, { status: 401 }));
    expect(error.status).toBe(401);
    expect(error.type).toBe('authentication_error');
    expect(error.message).toBe('Request had invalid authentication credentials.');
  });

  it.each([
    ['HTML', '<html><body>502 Bad Gateway</body></html>'],
    ['empty', ''],
    ['JSON without error', '{"message":"nope"}'],
    ['error that is a string', '{"error":"boom"}'],
    ['error with an empty message', '{"error":{"code":502,"message":""}}'],
    ['empty array', '[]'],
  ])('gives a generic message for a %s body', async (_name, body) => {
    const error = await gatewayErrorFromVertex(new Response(body, { status: 502 }));
    expect(error.status).toBe(502);
    expect(error.type).toBe('api_error');
    expect(error.message).toBe('Vertex AI answered HTTP 502 without an error message.');
    expect(error.code).toBe('http_502');
  });

  it('keeps retry-after', async () => {
    const error = await gatewayErrorFromVertex(
      Response.json(googleError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded.'), {
        status: 429,
        headers: { 'retry-after': '17' },
      }),
    );
    expect(error.headers).toEqual({ 'retry-after': '17' });
    const response = error.toResponse();
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('17');
    expect(await response.json()).toEqual({
      error: {
        message: 'Quota exceeded.',
        type: 'rate_limit_error',
        param: null,
        code: 'resource_exhausted',
      },
    });
  });

  it('adds no retry-after when Google sent none', async () => {
    const error = await gatewayErrorFromVertex(new Response('{}', { status: 500 }));
    expect(error.headers).toEqual({});
    expect(error.toResponse().headers.get('retry-after')).toBeNull();
  });
});
