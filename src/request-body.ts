import { concatBytes } from './bytes.ts';
import { GatewayError, invalidRequest } from './errors.ts';
import { releaseAfterFailure } from './release-reader.ts';

/**
 * The request body as text, refusing anything over `maxBytes` before it is held whole: a
 * declared Content-Length is checked before reading, and a chunked body is counted as it
 * arrives and refused at the limit (its rest is read and dropped, so the sender sees the 413).
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
      releaseAfterFailure(reader);
      throw bodyBrokeOff();
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      chunks.length = 0;
      await discardRest(reader);
      throw requestTooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concatBytes(chunks));
}

// How much more of an over-limit chunked body is read and thrown away, so its sender sees the 413,
// and for how long at most: a sender trickling bytes must not hold the request open for hours.
const MAX_DISCARDED_BYTES = 32 * 1024 * 1024;
const MAX_DISCARD_MS = 10_000;

/**
 * Reads the rest of a refused chunked body and throws it away, up to MAX_DISCARDED_BYTES more
 * within MAX_DISCARD_MS. A client still sending when the 413 goes out may have its connection
 * reset before it reads the answer: under `wrangler dev`, all 10 senders of a 3 MB chunked body
 * got EPIPE or ECONNRESET instead of the 413 until the rest was read (nginx's lingering close,
 * for the same reason).
 */
async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>) {
  // Cancelling ends the pending read (as done, or on workerd with an error), and the 413 goes out.
  const timer = setTimeout(() => reader.cancel().catch(() => {}), MAX_DISCARD_MS);
  try {
    for (let discarded = 0; discarded < MAX_DISCARDED_BYTES; ) {
      const { done, value } = await reader.read();
      if (done) return;
      discarded += value.byteLength;
    }
  } catch {
    releaseAfterFailure(reader); // the sender left: nobody is waiting for the answer
    return;
  } finally {
    clearTimeout(timer);
  }
  reader.releaseLock();
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
