import { errorTypeForStatus, GatewayError } from '../errors.ts';
import { readPrefix } from '../read-prefix.ts';

// Enough for any Google error document; anything longer is not an error we can explain, so the
// rest is not read.
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The fields of Google's error object the gateway reads; any may be missing or of another type. */
export interface GoogleError {
  code?: unknown;
  message?: unknown;
  status?: unknown;
}

/**
 * Turns a failed Vertex response into the OpenAI error shape, keeping the upstream status and
 * Google's own message. Vertex sends `{"error":{...}}` or the same wrapped in a one-element array.
 */
export async function gatewayErrorFromVertex(response: Response): Promise<GatewayError> {
  const text = await readPrefix(response, MAX_ERROR_BODY_BYTES);
  const retryAfter = response.headers.get('retry-after');
  return gatewayErrorFromGoogle(
    extractGoogleError(text),
    response.status,
    {
      code: `http_${response.status}`,
      message: `Vertex AI answered HTTP ${response.status} without an error message.`,
    },
    retryAfter ? { 'retry-after': retryAfter } : {},
  );
}

/**
 * A 200 that answers a streaming request with something other than an event stream (a JSON
 * document, no body at all), which a client would otherwise take for an empty, finished answer.
 * An error document inside keeps Google's status and message; `googleStatus` is that status, for
 * the retry decision, or null when the answer was something else.
 */
export async function gatewayErrorFromNonStream(
  response: Response,
): Promise<{ error: GatewayError; googleStatus: number | null }> {
  const googleError = extractGoogleError(await readPrefix(response, MAX_ERROR_BODY_BYTES));
  const code = typeof googleError?.code === 'number' ? googleError.code : null;
  if (googleError && code !== null && code >= 400 && code <= 599) {
    const error = gatewayErrorFromGoogle(googleError, code, {
      code: `http_${code}`,
      message: `Vertex AI reported an error (${code}) instead of a stream.`,
    });
    return { error, googleStatus: code };
  }
  const type = response.headers.get('content-type');
  const error = new GatewayError(
    502,
    'api_error',
    'upstream_not_a_stream',
    `Vertex AI answered a streaming request with ${type ? `"${type.slice(0, 100)}"` : 'no body'} instead of an event stream.`,
  );
  return { error, googleStatus: null };
}

/**
 * Google's error object in the OpenAI shape, with the given status: `code` is Google's status in
 * lower case and the message is Google's, each with a fallback for when Google left it out.
 */
export function gatewayErrorFromGoogle(
  google: GoogleError | null,
  status: number,
  fallback: { code: string; message: string },
  headers: Record<string, string> = {},
): GatewayError {
  const message =
    typeof google?.message === 'string' && google.message !== ''
      ? google.message
      : fallback.message;
  const code = typeof google?.status === 'string' ? google.status.toLowerCase() : fallback.code;
  return new GatewayError(status, errorTypeForStatus(status), code, message, { headers });
}

function extractGoogleError(text: string): GoogleError | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const document: unknown = Array.isArray(json) ? json[0] : json;
  if (document && typeof document === 'object' && 'error' in document) {
    const error = (document as { error: unknown }).error;
    if (error && typeof error === 'object') return error as GoogleError;
  }
  return null;
}
