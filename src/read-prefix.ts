import { concatBytes } from './bytes.ts';
import { releaseAfterFailure } from './release-reader.ts';

/**
 * Up to `maxBytes` of a response body as text; the rest is not read. A body that breaks off or
 * is aborted (a deadline, a client gone) gives what arrived before, without an error: the
 * caller knows its own signals and the status, and decides what a cut-off body means.
 */
export async function readPrefix(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // Aborted or broken: what arrived is all there is. Released, not cancelled (release-reader.ts).
    releaseAfterFailure(reader);
    return decoded(chunks, maxBytes);
  }
  reader.cancel().catch(() => {});
  return decoded(chunks, maxBytes);
}

function decoded(chunks: Uint8Array[], maxBytes: number): string {
  return new TextDecoder().decode(concatBytes(chunks).subarray(0, maxBytes));
}
