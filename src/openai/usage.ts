/** Token counts as logged: OpenAI's three totals, when the response carries them. */
export interface TokenUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

/** Keeps only the numeric totals, so nothing a model wrote can reach a log line. */
export function tokenUsage(value: unknown): TokenUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const usage: TokenUsage = {};
  for (const name of ['prompt_tokens', 'completion_tokens', 'total_tokens'] as const) {
    const count = (value as Record<string, unknown>)[name];
    if (typeof count === 'number') usage[name] = count;
  }
  return Object.keys(usage).length > 0 ? usage : undefined;
}

import { lastIndexOfBytes } from '../bytes.ts';

const USAGE_KEY = new TextEncoder().encode('"usage"');
// Made once: constructing a decoder costs more than decoding a usage object.
const decoder = new TextDecoder();

/**
 * The usage of a non-streamed completion. It sits at the end of the document, so only the bytes
 * from the last `"usage"` on are decoded and parsed, not the whole (possibly long) answer.
 */
export function usageOfCompletion(body: Uint8Array): TokenUsage | undefined {
  const at = lastIndexOfBytes(body, USAGE_KEY);
  return at === -1 ? undefined : usageAfter(decoder.decode(body.subarray(at)));
}

/** Parses the object that follows the `"usage"` key that `json` starts with. */
function usageAfter(json: string): TokenUsage | undefined {
  const start = json.indexOf('{');
  const end = start === -1 ? -1 : endOfObject(json, start);
  if (end === -1 || /[^\s:]/.test(json.slice(USAGE_KEY.length, start))) return undefined;
  try {
    return tokenUsage(JSON.parse(json.slice(start, end)));
  } catch {
    return undefined;
  }
}

/** The index just past the object that opens at `start`, skipping braces inside strings. */
function endOfObject(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i + 1;
  }
  return -1;
}
