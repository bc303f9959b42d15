import { concatBytes } from './bytes.ts';
import { GatewayError } from './errors.ts';

/**
 * The request body as text, refusing anything over `maxBytes` before it is held whole: a
 * declared Content-Length is checked before reading, and a chunked body is counted as it
 * arrives and abandoned at the limit.
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared)) {
    if (Number(declared) > maxBytes) {
      await request.body?.cancel().catch(() => {});
      throw requestTooLarge(maxBytes);
    }
    // The runtime holds the body to its declared length, so the native reader is safe here.
    return request.text();
  }
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw requestTooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concatBytes(chunks));
}

function requestTooLarge(maxBytes: number): GatewayError {
  return new GatewayError(
    413,
    'invalid_request_error',
    'request_too_large',
    `The request body is larger than the ${maxBytes} bytes this gateway accepts (MAX_REQUEST_BYTES). Send large images as gs:// URIs instead of inline data.`,
  );
}
