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
  let found: { start: number; end: number } | null = null;
  forEachTopLevelKey(text, (name, afterKey) => {
    if (name !== key) return;
    let j = afterKey;
    while (j < text.length && text[j] !== ':') j++;
    j++;
    while (j < text.length && /\s/.test(text[j] ?? '')) j++;
    found = text[j] === '"' ? { start: j, end: endOfString(text, j) } : null;
  });
  return found;
}

/**
 * Whether one of `keys` appears more than once at the top level. JSON.parse keeps the last of
 * duplicates, but other parsers may keep the first, so the gateway must not check one value
 * and forward another. Without `\u` escapes a key can only be spelled one way, so counting
 * quoted occurrences rules duplicates out cheaply; only a possible one costs a full scan.
 */
export function hasDuplicateTopLevelKey(text: string, keys: readonly string[]): string | null {
  const suspect = text.includes('\\u') || keys.some((key) => occursTwice(text, `"${key}"`));
  if (!suspect) return null;
  const seen = new Set<string>();
  let duplicate: string | null = null;
  forEachTopLevelKey(text, (name) => {
    if (!keys.includes(name)) return;
    if (seen.has(name)) duplicate ??= name;
    seen.add(name);
  });
  return duplicate;
}

function occursTwice(text: string, needle: string): boolean {
  const first = text.indexOf(needle);
  return first !== -1 && text.indexOf(needle, first + needle.length) !== -1;
}

/** Calls `visit` with each top-level member name (unescaped) and the index just past it. */
function forEachTopLevelKey(text: string, visit: (name: string, afterKey: number) => void): void {
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const end = endOfString(text, i);
      if (depth === 1 && expectKey) {
        expectKey = false;
        visit(JSON.parse(text.slice(i, end)) as string, end);
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
}

/** Index just past the closing quote of the string that opens at `start`. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return text.length;
}
