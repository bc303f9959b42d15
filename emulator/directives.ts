import type { ErrorShape } from './google-errors.ts';

/**
 * Per-request behaviour, read from the top-level `emulator` field of a chat request body.
 * The gateway forwards unknown fields unchanged, so tests can steer the emulator through it.
 */
export interface Directives {
  /** Answer with Google's error for this HTTP status instead of a completion. */
  status?: number;
  /** Error message (with `status`) or the SSE error event's message (with `errorEventAfterChunks`). */
  message?: string;
  errorShape?: ErrorShape;
  /** Sent as the Retry-After header, on errors and successes alike. */
  retryAfter?: string | number;
  headersDelayMs?: number;
  chunks?: number;
  chunkDelayMs?: number;
  firstChunkDelayMs?: number;
  /** Replace the answer with `deterministicText(totalBytes)`. */
  totalBytes?: number;
  errorEventAfterChunks?: number;
  abortAfterChunks?: number;
  omitDone?: boolean;
  reply?: string;
  /** Put `extra_content.google.thought_signature` with this value on the reply. */
  thoughtSignature?: string;
  finishReason?: string;
  /** How stream lines end: `crlf` as Google does on some paths (VERTEX.md); `lf` by default. */
  lineEnding?: 'lf' | 'crlf';
  /**
   * A JSON answer (an error, a non-streamed completion, a token) sends its headers and half its
   * body at once, and the rest after this many ms: a body that stalls.
   */
  bodyStallMs?: number;
  /** A JSON answer sends its headers and half its body, then the connection is cut. */
  cutBody?: boolean;
  /**
   * After this many chunks, send the first half of the next event (after the last chunk, the
   * usage event or `[DONE]`, even with `omitDone`) and end the response cleanly: a stream cut
   * inside an event without any network error.
   */
  truncateAfterChunks?: number;
  /** Answer a `stream: true` request with the non-streamed JSON completion, as a 200. */
  streamAsJson?: boolean;
}

type Kind = 'count' | 'string' | 'boolean' | 'status' | 'shape' | 'retryAfter' | 'lineEnding';

const SCHEMA: Readonly<Record<keyof Directives, Kind>> = {
  status: 'status',
  message: 'string',
  errorShape: 'shape',
  retryAfter: 'retryAfter',
  headersDelayMs: 'count',
  chunks: 'count',
  chunkDelayMs: 'count',
  firstChunkDelayMs: 'count',
  totalBytes: 'count',
  errorEventAfterChunks: 'count',
  abortAfterChunks: 'count',
  omitDone: 'boolean',
  reply: 'string',
  thoughtSignature: 'string',
  finishReason: 'string',
  lineEnding: 'lineEnding',
  bodyStallMs: 'count',
  cutBody: 'boolean',
  truncateAfterChunks: 'count',
  streamAsJson: 'boolean',
};

export const DIRECTIVE_NAMES = Object.keys(SCHEMA) as (keyof Directives)[];

export class DirectiveError extends Error {}

function valid(kind: Kind, value: unknown): boolean {
  switch (kind) {
    case 'count':
      return Number.isInteger(value) && (value as number) >= 0;
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'status':
      return Number.isInteger(value) && (value as number) >= 400 && (value as number) <= 599;
    case 'shape':
      return value === 'object' || value === 'array';
    case 'retryAfter':
      return typeof value === 'string' || (typeof value === 'number' && value >= 0);
    case 'lineEnding':
      return value === 'lf' || value === 'crlf';
  }
}

/**
 * Validates strictly: a misspelt directive must fail loudly, or a test would silently assert
 * against default behaviour. `extraKeys` are allowed through unchecked (used by fault specs).
 */
export function parseDirectives(
  value: unknown,
  extraKeys: readonly string[] = [],
): Directives & Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new DirectiveError('emulator directives must be a JSON object');
  }
  for (const [name, field] of Object.entries(value)) {
    if (extraKeys.includes(name)) continue;
    const kind = SCHEMA[name as keyof Directives];
    if (!kind) {
      throw new DirectiveError(
        `unknown emulator directive "${name}" (known: ${DIRECTIVE_NAMES.join(', ')})`,
      );
    }
    if (!valid(kind, field)) {
      throw new DirectiveError(`emulator directive "${name}" has an invalid value`);
    }
  }
  return value as Directives & Record<string, unknown>;
}
