import { concatBytes } from './bytes.ts';
import { GatewayError, invalidRequest } from './errors.ts';

/**
 * The request body as text, refusing anything over `maxBytes` before it is held whole: a
 * declared Content-Length is checked before reading, and a chunked body is counted as it
 * arrives and abandoned at the limit.
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const encoding = request.headers.get('content-encoding');
  // A compressed body would only fail as "not JSON", which hides the cause.
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
    throw new GatewayError(
      415,
      'invalid_request_error',
      'unsupported_content_encoding',
      'The gateway takes request bodies uncompressed: send them without Content-Encoding.',
    );
  }
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared)) {
    // Refused unread: the runtime discards the rest once the answer is out. Cancelling the body
    // instead cut the connection under `wrangler dev` before a client still sending saw the 413.
    if (Number(declared) > maxBytes) throw requestTooLarge(maxBytes);
    // The runtime holds the body to its declared length, so the native reader is safe here.
    try {
      return await request.text();
    } catch {
      throw bodyBrokeOff();
    }
  }
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      throw bodyBrokeOff();
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      reader.releaseLock();
      throw requestTooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concatBytes(chunks));
}

/** The client stopped sending (it left, or closed its side) before its body was complete. */
function bodyBrokeOff(): GatewayError {
  return invalidRequest(
    'request_body_incomplete',
    'The request body ended before it was complete: the connection closed while it was being sent.',
  );
}

function requestTooLarge(maxBytes: number): GatewayError {
  return new GatewayError(
    413,
    'invalid_request_error',
    'request_too_large',
    `The request body is larger than the ${maxBytes} bytes this gateway accepts (MAX_REQUEST_BYTES). Send large images as gs:// URIs instead of inline data.`,
  );
}
