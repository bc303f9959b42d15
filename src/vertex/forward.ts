import { GatewayError } from '../errors.ts';
import { gatewayErrorFromVertex } from './upstream-error.ts';

export interface ForwardRequest {
  url: string;
  accessToken: string;
  body: string;
  stream: boolean;
  /** The client's request signal: when the client leaves, the upstream call is cancelled. */
  signal: AbortSignal;
}

/**
 * Sends the chat request to Vertex with nothing of the caller's but the body: only the Google
 * bearer and content headers leave the gateway. The upstream status is checked before anything
 * is committed to the client, and a success body is handed over as the same stream, so every
 * SSE chunk goes out the moment it arrives and a client cancel reaches Vertex.
 */
export async function forwardToVertex(
  request: ForwardRequest,
  doFetch: typeof fetch,
): Promise<Response> {
  let upstream: Response;
  try {
    upstream = await doFetch(request.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${request.accessToken}`,
        'content-type': 'application/json',
        accept: request.stream ? 'text/event-stream' : 'application/json',
      },
      body: request.body,
      signal: request.signal,
      // A redirect would carry the Google bearer to wherever it points.
      redirect: 'manual',
    });
  } catch (error) {
    // A client that left aborts the fetch too; only a real network failure is worth a log line.
    if (!request.signal.aborted) {
      console.error(
        JSON.stringify({ level: 'error', message: 'Vertex AI unreachable', error: String(error) }),
      );
    }
    throw new GatewayError(
      502,
      'api_error',
      'upstream_unreachable',
      'Vertex AI could not be reached.',
    );
  }
  if (!upstream.ok) {
    if (upstream.status >= 400 && upstream.status <= 599)
      throw await gatewayErrorFromVertex(upstream);
    await upstream.body?.cancel();
    throw new GatewayError(
      502,
      'api_error',
      'upstream_unexpected_status',
      `Vertex AI answered with an unexpected HTTP ${upstream.status}.`,
    );
  }

  const headers = new Headers();
  if (request.stream) {
    headers.set('content-type', 'text/event-stream; charset=utf-8');
    headers.set('cache-control', 'no-cache');
  } else {
    headers.set('content-type', upstream.headers.get('content-type') ?? 'application/json');
  }
  return new Response(upstream.body, { status: upstream.status, headers });
}
