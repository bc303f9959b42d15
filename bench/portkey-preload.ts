/**
 * Loaded with `node --import` before Portkey's start-server.js, to run it the way this benchmark
 * runs every server. Two changes, neither of which touches its request path for JSON answers:
 *
 * 1. Loopback only. start-server.js calls @hono/node-server's serve() without a hostname, so it
 *    would listen on every interface; here a listen() without a host gets 127.0.0.1.
 *
 * 2. Streaming works. With the installed @hono/node-server (1.19), Portkey's stream handler builds
 *    `new Response(stream, upstreamResponse)`; hono's Response wrapper keeps the upstream's
 *    Headers object, which fetch made immutable, and Portkey's next `headers.append()` throws
 *    "immutable", so every streamed chat request fails with 500. Re-wrapping event-stream
 *    answers in a native Response gives them ordinary, mutable headers. The cost is one Response
 *    object per streamed request.
 */
import { Server } from 'node:net';

const listen = Server.prototype.listen;
Server.prototype.listen = function listenOnLoopback(this: Server, ...args: unknown[]) {
  if (typeof args[0] === 'number') {
    if (args[1] === undefined) args[1] = '127.0.0.1';
    else if (typeof args[1] === 'function') args.splice(1, 0, '127.0.0.1');
  }
  return (listen as (...a: unknown[]) => Server).apply(this, args);
} as typeof Server.prototype.listen;

const nativeFetch = globalThis.fetch;
const NativeResponse = globalThis.Response;
globalThis.fetch = async function fetchWithMutableStreamHeaders(input, init) {
  const response = await nativeFetch(input, init);
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) return response;
  return new NativeResponse(response.body, response);
} as typeof fetch;
