import { GatewayError } from '../errors.ts';
import { isRetryableStatus } from './retry-policy.ts';
import { gatewayErrorFromNonStream, gatewayErrorFromVertex } from './upstream-error.ts';

export interface ForwardRequest {
  url: string;
  accessToken: string;
  body: string;
  stream: boolean;
  /** The client's request signal: when the client leaves, the upstream call is cancelled. */
  signal: AbortSignal;
  /** The wait for response headers; the body may take as long as it needs. */
  timeoutMs: number;
}

/** One attempt's result: a successful upstream response, or an error and whether to retry it. */
export type AttemptOutcome =
  /** `bytes` is the whole body of a non-streamed answer; a stream's body is left unread. */
  | { ok: true; response: Response; bytes: Uint8Array<ArrayBuffer> | null }
  | {
      ok: false;
      error: GatewayError;
      retryable: boolean;
      retryAfter: string | null;
      /** Vertex's status, or null when no answer came. */
      upstreamStatus: number | null;
    };

/**
 * Sends the chat request to Vertex once, with nothing of the caller's but the body: only the
 * Google bearer and content headers leave the gateway. The outcome is decided on the status
 * alone, before anything is committed to the client; a success body is left unread, so it can
 * be handed over as the same stream.
 */
export async function forwardToVertex(
  request: ForwardRequest,
  doFetch: typeof fetch,
): Promise<AttemptOutcome> {
  const controller = new AbortController();
  const onClientGone = () => controller.abort();
  request.signal.addEventListener('abort', onClientGone, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, request.timeoutMs);

  let upstream: Response;
  let bytes: Uint8Array<ArrayBuffer> | null = null;
  let vertexError: GatewayError | null = null;
  // The status a failure is retried by: Vertex's, or Google's inside a 200 that is no stream.
  let failedStatus = 0;
  try {
    upstream = await doFetch(request.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${request.accessToken}`,
        'content-type': 'application/json',
        accept: request.stream ? 'text/event-stream' : 'application/json',
      },
      body: request.body,
      signal: controller.signal,
      // A redirect would carry the Google bearer to wherever it points.
      redirect: 'manual',
    });
    // Only a 200 is an answer: any other 2xx (a 204 cannot even be re-sent with a body) is an
    // unexpected status below.
    const answered = upstream.status === 200;
    // Vertex sends a non-streamed answer only once it is complete, so reading it whole here
    // costs no latency, proves it arrived intact (a broken one can still be retried), and keeps
    // it under the same deadline as the headers. Its content type is passed on, so it must be
    // JSON's: a page from a misconfigured VERTEX_BASE_URL must not be served as the gateway's.
    if (answered && !request.stream) {
      if (declares(upstream, JSON_TYPE)) bytes = new Uint8Array(await upstream.arrayBuffer());
      else {
        await upstream.body?.cancel();
        vertexError = notJsonError(upstream);
      }
    }
    // A stream's success is decided here too, before anything is committed: an answer that is
    // not an event stream would reach the client as an empty, finished one.
    if (answered && request.stream && !isEventStream(upstream)) {
      const notAStream = await gatewayErrorFromNonStream(upstream);
      vertexError = notAStream.error;
      failedStatus = notAStream.googleStatus ?? 0;
    }
    // An error body is read under the same deadline and client signal: one that stalls must not
    // hold the request (a cut-off body still leaves the status to report).
    if (upstream.status >= 400 && upstream.status <= 599) {
      vertexError = await gatewayErrorFromVertex(upstream);
      failedStatus = upstream.status;
    }
  } catch (error) {
    request.signal.removeEventListener('abort', onClientGone);
    if (timedOut) {
      // Not retried: the time a retry would need is the time that already ran out.
      return failure(
        new GatewayError(
          504,
          'api_error',
          'upstream_timeout',
          `Vertex AI did not answer within ${request.timeoutMs} ms (UPSTREAM_TIMEOUT_MS).`,
        ),
        false,
      );
    }
    // A client that left aborts the fetch too; only a real network failure is worth a log line.
    if (!request.signal.aborted) {
      console.error(
        JSON.stringify({ level: 'error', message: 'Vertex AI unreachable', error: String(error) }),
      );
    }
    return failure(
      new GatewayError(
        502,
        'api_error',
        'upstream_unreachable',
        'Vertex AI could not be reached, or its answer broke off.',
      ),
      !request.signal.aborted,
    );
  } finally {
    clearTimeout(timer);
  }
  if (upstream.status === 200 && !vertexError) return { ok: true, response: upstream, bytes };

  request.signal.removeEventListener('abort', onClientGone);
  if (vertexError) {
    return failure(
      vertexError,
      isRetryableStatus(failedStatus),
      upstream.status,
      upstream.headers.get('retry-after'),
    );
  }
  await upstream.body?.cancel();
  return failure(
    new GatewayError(
      502,
      'api_error',
      'upstream_unexpected_status',
      `Vertex AI answered with an unexpected HTTP ${upstream.status}.`,
    ),
    false,
    upstream.status,
  );
}

function failure(
  error: GatewayError,
  retryable: boolean,
  upstreamStatus: number | null = null,
  retryAfter: string | null = null,
): AttemptOutcome {
  return { ok: false, error, retryable, retryAfter, upstreamStatus };
}

const JSON_TYPE = /^application\/json\s*(?:;|$)/i;
const EVENT_STREAM_TYPE = /^text\/event-stream\s*(?:;|$)/i;

/**
 * Whether an answer declares the media type `type` matches. No content type at all is given the
 * benefit of the doubt; a declared other type is not.
 */
function declares(response: Response, type: RegExp): boolean {
  const declared = response.headers.get('content-type');
  return declared === null || type.test(declared);
}

const notJsonError = (response: Response) =>
  new GatewayError(
    502,
    'api_error',
    'upstream_not_json',
    `Vertex AI answered with "${String(response.headers.get('content-type')).slice(0, 100)}" instead of JSON.`,
  );

/** Whether a 200 to a streaming request is one: it has a body, declared an event stream. */
const isEventStream = (response: Response) =>
  response.body !== null && declares(response, EVENT_STREAM_TYPE);
