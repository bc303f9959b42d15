/**
 * Replaces the value of one top-level string member in JSON text, leaving every other byte as
 * the client sent it. Re-serialising the parsed body instead would round large integers (seeds,
 * ids) through float64 and reorder nothing but still cost a full stringify per request.
 * `text` must already be valid JSON (it has been through JSON.parse). Like JSON.parse, the last
 * duplicate key wins.
 */
export function replaceTopLevelString(text: string, key: string, value: string): string {
  const span = findTopLevelStringValue(text, key);
  if (!span) return text;
  return text.slice(0, span.start) + JSON.stringify(value) + text.slice(span.end);
}

function findTopLevelStringValue(text: string, key: string): { start: number; end: number } | null {
  let depth = 0;
  let expectKey = false;
  let found: { start: number; end: number } | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const end = endOfString(text, i);
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (JSON.parse(text.slice(i, end)) === key) {
          let j = end;
          while (j < text.length && text[j] !== ':') j++;
          j++;
          while (j < text.length && /\s/.test(text[j] ?? '')) j++;
          if (text[j] === '"') found = { start: j, end: endOfString(text, j) };
        }
      }
      i = end - 1;
    } else if (ch === '{' || ch === '[') {
      depth++;
      expectKey = ch === '{' && depth === 1;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return found;
}

/** Index just past the closing quote of the string that opens at `start`. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return text.length;
}
