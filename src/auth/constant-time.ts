/**
 * Compares a presented secret with a known one without an early exit, so the time taken does
 * not reveal how much of a guess was right. The loop runs over the known secret's length
 * whatever is presented; only the presented length, which the caller knows anyway, changes
 * which bytes are read. (A SHA-256 of both sides would equalise lengths too, but WebCrypto's
 * digest is asynchronous and costs tens of microseconds per request on Deno.)
 */
export function secretsEqual(presented: Uint8Array, known: Uint8Array): boolean {
  let difference = presented.length ^ known.length;
  for (let i = 0; i < known.length; i++) difference |= (known[i] as number) ^ (presented[i] ?? 0);
  return difference === 0;
}
