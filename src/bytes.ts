/** Byte-level searches for ASCII markers in UTF-8 bodies, so a body need not be decoded whole. */

export function lastIndexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0] as number;
  for (
    let i = haystack.lastIndexOf(first);
    i !== -1;
    i = i > 0 ? haystack.lastIndexOf(first, i - 1) : -1
  ) {
    if (matchesAt(haystack, needle, i)) return i;
  }
  return -1;
}

/** Whether `needle` occurs in `haystack` at `at`; its first byte is taken as already matched. */
export function matchesAt(haystack: Uint8Array, needle: Uint8Array, at: number): boolean {
  if (at + needle.length > haystack.length) return false;
  for (let j = 1; j < needle.length; j++) if (haystack[at + j] !== needle[j]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 0;
  for (const part of parts) total += part.length;
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
