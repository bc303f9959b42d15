import type { MiddlewareHandler } from 'hono';
import { GatewayError } from './errors.ts';

// Every header of ours a browser app may want to read: its key's limit included.
const EXPOSED_HEADERS =
  'x-request-id, x-vertex-location, server-timing, retry-after, x-ratelimit-limit-requests, ' +
  'x-ratelimit-remaining-requests, x-ratelimit-reset-requests';
const DEFAULT_ALLOWED_HEADERS = 'authorization, content-type, x-request-id';
// The OpenAI SDKs send several x-stainless-* headers; a preflight's list is echoed when it is
// a plain list of header names, since the bearer, not the header set, is what guards the API.
const HEADER_LIST = /^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$/;

/**
 * Whether answers depend on the caller's Origin: with a list of origins they do, every one of
 * them (with or without an Origin, allowed or not), so a shared cache must key on it. With `*`
 * they do not.
 */
export const variesByOrigin = (allowed: '*' | ReadonlySet<string>): boolean =>
  allowed !== '*' && allowed.size > 0;

/**
 * CORS for the origins the operator allows (Fetch standard §3.2). A preflight from any other
 * origin gets 403, and their other requests get no CORS headers, so browsers withhold the answer.
 */
export function cors(allowed: '*' | ReadonlySet<string>): MiddlewareHandler {
  const vary = variesByOrigin(allowed);
  return async function corsHeaders(c, next): Promise<Response | undefined> {
    const origin = c.req.header('origin');
    if (origin === undefined) {
      await next();
      if (vary) c.res.headers.append('vary', 'Origin');
      return undefined;
    }
    const permitted = allowed === '*' || allowed.has(origin.toLowerCase());
    const allowOrigin = allowed === '*' ? '*' : origin;

    if (c.req.method === 'OPTIONS' && c.req.header('access-control-request-method')) {
      if (!permitted) {
        throw new GatewayError(
          403,
          'permission_error',
          'cors_origin_not_allowed',
          'This origin may not call the gateway from a browser. Its operator can allow it with CORS_ORIGINS.',
          { headers: vary ? { vary: 'Origin' } : {} },
        );
      }
      const requested = c.req.header('access-control-request-headers');
      return new Response(null, {
        status: 204,
        headers: {
          'access-control-allow-origin': allowOrigin,
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers':
            requested && HEADER_LIST.test(requested) ? requested : DEFAULT_ALLOWED_HEADERS,
          'access-control-max-age': '86400',
          vary: 'Origin, Access-Control-Request-Headers',
        },
      });
    }
    await next();
    if (vary) c.res.headers.append('vary', 'Origin');
    if (permitted) {
      c.res.headers.set('access-control-allow-origin', allowOrigin);
      c.res.headers.set('access-control-expose-headers', EXPOSED_HEADERS);
    }
    return undefined;
  };
}
