import { concatBytes, matchesAt } from '../bytes.ts';
import { GatewayError } from '../errors.ts';
import { releaseAfterFailure } from '../release-reader.ts';
import { type GoogleError, gatewayErrorFromGoogle } from './upstream-error.ts';

export type StreamOutcome =
  | 'complete'
  | 'upstream_error_event'
  | 'interrupted'
  | 'idle_timeout'
  | 'client_cancelled';

export interface StreamSummary {
  outcome: StreamOutcome;
  /** The `usage` object of the last event that carried one, if any. */
  usage: unknown;
  /** The code of the error event the client got, when the stream failed. */
  errorCode?: string;
}

export interface StreamGuardOptions {
  /** The longest silence allowed between two upstream chunks. */
  idleTimeoutMs: number;
  onEnd?: (summary: StreamSummary) => void;
}

const LF = 0x0a;
const CR = 0x0d;
const LF_ONLY = Uint8Array.of(LF);
const CR_ONLY = Uint8Array.of(CR);
const CRLF = Uint8Array.of(CR, LF);
const LF_LF = Uint8Array.of(LF, LF);
const NOTHING = new Uint8Array(0);
const QUOTE = 0x22;
const ERROR_KEY = new TextEncoder().encode('"error"');
const USAGE_KEY = new TextEncoder().encode('"usage"');
export const HAS_ERROR = 1;
export const HAS_USAGE = 2;
// Past this, an event without an end is passed on unread rather than held any longer.
const MAX_HELD_BYTES = 4 * 1024 * 1024;

/**
 * Relays a Vertex SSE body byte for byte, so that no failure can look like a finished answer.
 * If the upstream breaks off, goes silent past `idleTimeoutMs`, or sends an event with an
 * `error` key (Google's way of failing after the 200), the client gets one OpenAI-shaped
 * `data: {"error":{...}}` event and a clean end, which the OpenAI SDKs raise as an APIError.
 *
 * Only whole events are passed on: the bytes after the last blank line wait for the rest of
 * their event, so an error event never lands in the middle of another. Vertex ends every chunk
 * on an event boundary, so in practice nothing waits; one event past MAX_HELD_BYTES is passed
 * on as it comes, unchecked. The one byte change: a last event that the upstream ends at EOF
 * without its blank line gets one, so that it is checked like the rest and strict SSE parsers
 * deliver it.
 */
export function guardEventStream(
  body: ReadableStream<Uint8Array>,
  options: StreamGuardOptions,
): ReadableStream<Uint8Array> {
  const reader = chunkReader(body);
  const { idleTimeoutMs } = options;
  // The unfinished event, as the reads that brought it: joined once its end arrives, so a large
  // event costs one copy rather than one per read.
  let heldParts: Uint8Array[] = [];
  let heldLength = 0;
  let midEvent = false;
  // The last bytes of an event passed on unfinished (past MAX_HELD_BYTES): a blank line may
  // straddle them and the next read.
  let passedTail: Uint8Array = NOTHING;
  let relayedData = false;
  let usageBlock: Uint8Array | null = null;
  // When the pending read began; null while no read waits on Vertex.
  let waitingSince: number | null = null;
  let idle = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ended = false;

  // One timer per stream, re-armed only when it fires, instead of one per chunk. Silence is
  // Vertex's only while a read waits on it: a client slow to take what arrived holds the reads
  // back, and that is not the upstream going quiet.
  function armIdleTimer(ms: number) {
    timer = setTimeout(() => {
      if (waitingSince === null) return armIdleTimer(idleTimeoutMs);
      const silentFor = Date.now() - waitingSince;
      if (silentFor < idleTimeoutMs) return armIdleTimer(idleTimeoutMs - silentFor);
      idle = true;
      reader.cancel().catch(() => {});
    }, ms);
  }

  function end(outcome: StreamOutcome, errorCode?: string) {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    options.onEnd?.({
      outcome,
      usage: usageBlock ? lastUsage(usageBlock) : undefined,
      ...(errorCode ? { errorCode } : {}),
    });
  }

  function fail(
    controller: ReadableStreamDefaultController<Uint8Array>,
    outcome: StreamOutcome,
    error: GatewayError,
  ) {
    const frame = `${midEvent ? '\n\n' : ''}data: ${JSON.stringify(error.toJSON())}\n\n`;
    controller.enqueue(new TextEncoder().encode(frame));
    controller.close();
    end(outcome, error.code);
  }

  /**
   * Where the unfinished event ends, if `chunk` ends it: only the new bytes, and the three before
   * them (for a blank line split across reads), can end it.
   */
  function cutIn(chunk: Uint8Array): number {
    if (heldLength === 0 && !midEvent) return afterLastEventEnd(chunk);
    const seam = heldLength > 0 ? lastBytes(heldParts, 3) : passedTail;
    const cut = afterLastEventEnd(concatBytes([seam, chunk]));
    return cut === 0 ? 0 : Math.max(0, heldLength - seam.length + cut);
  }

  /** Handles one upstream chunk; true when something went out to the client. */
  function relay(controller: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array) {
    const cut = cutIn(chunk);
    if (cut === 0 && heldLength + chunk.length <= MAX_HELD_BYTES) {
      heldParts.push(chunk);
      heldLength += chunk.length;
      return false;
    }
    const data = heldLength === 0 ? chunk : concatBytes([...heldParts, chunk]);
    heldParts = [];
    heldLength = 0;
    let whole = data;
    if (cut > 0 && cut < data.length) {
      whole = data.subarray(0, cut);
      heldParts = [data.slice(cut)];
      heldLength = data.length - cut;
    }
    midEvent = cut === 0;
    if (midEvent) passedTail = lastBytes([passedTail, whole], 3);
    relayedData ||= hasDataField(whole);

    const markers = markersIn(whole);
    if (markers & HAS_ERROR) {
      const failure = findErrorEvent(whole);
      if (failure) {
        const before = whole.subarray(0, failure.start);
        if (markersIn(before) & HAS_USAGE) usageBlock = before.slice();
        if (failure.start > 0) controller.enqueue(before);
        fail(controller, 'upstream_error_event', failure.error);
        reader.cancel().catch(() => {});
        return true;
      }
    }
    if (markers & HAS_USAGE) usageBlock = whole.slice();
    controller.enqueue(whole);
    return true;
  }

  return new ReadableStream<Uint8Array>({
    start() {
      armIdleTimer(idleTimeoutMs);
    },
    async pull(controller) {
      // Loop until something is enqueued: a pull that enqueues nothing is not called again.
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        waitingSince = Date.now();
        try {
          result = await reader.read();
        } catch {
          // On workerd, a reader left locked to a fetch body that broke off keeps the whole
          // request alive: about 13 KB of RSS per broken stream, without end (24,000 of them
          // took RSS from 126 to 536 MB). Released, nothing stays.
          releaseAfterFailure(reader);
          if (idle) return fail(controller, 'idle_timeout', idleTimeoutError(idleTimeoutMs));
          return fail(controller, 'interrupted', interruptedError());
        }
        waitingSince = null;
        if (idle) return fail(controller, 'idle_timeout', idleTimeoutError(idleTimeoutMs));
        if (result.done) return finish(controller);
        if (relay(controller, result.value) || ended) return;
      }
    },
    cancel(reason) {
      end('client_cancelled');
      // The reader is already released when the upstream broke off first: nothing to cancel.
      return reader.cancel(reason).catch(() => {});
    },
  });

  /**
   * EOF ends the last event too (Vertex may leave off its blank line): it is checked like any
   * other and given its end, so that strict SSE parsers do not drop it. A last event cut off
   * inside its JSON, or a stream with no event at all, is a break, not an answer.
   */
  function finish(controller: ReadableStreamDefaultController<Uint8Array>) {
    if (heldLength > 0) {
      const tail = concatBytes(heldParts);
      heldParts = [];
      heldLength = 0;
      if (!isWholeEvent(tail)) return fail(controller, 'interrupted', interruptedError());
      relay(controller, withEventEnd(tail));
      if (ended) return;
    } else if (midEvent) {
      // An event passed on unchecked (past MAX_HELD_BYTES) that EOF ends: its end, as for any.
      controller.enqueue(eventEndAfter(passedTail));
      midEvent = false;
    }
    if (!relayedData) return fail(controller, 'interrupted', emptyStreamError());
    controller.close();
    end('complete');
  }
}

/** The last `count` bytes held across `parts` (reads may be a byte long). */
function lastBytes(parts: readonly Uint8Array[], count: number): Uint8Array {
  const bytes: number[] = [];
  for (let p = parts.length - 1; p >= 0 && bytes.length < count; p--) {
    const part = parts[p] as Uint8Array;
    for (let i = part.length - 1; i >= 0 && bytes.length < count; i--) {
      bytes.unshift(part[i] as number);
    }
  }
  return Uint8Array.from(bytes);
}

/** Whether whole events carry a data field: a stream of comments alone is no answer. */
function hasDataField(bytes: Uint8Array): boolean {
  for (const event of events(bytes)) if (event.hasData) return true;
  return false;
}

/** Whether an event cut off by EOF is whole all the same: each data payload JSON or [DONE]. */
function isWholeEvent(tail: Uint8Array): boolean {
  for (const event of events(tail)) {
    if (!event.hasData || event.data.trim() === '[DONE]') continue;
    try {
      JSON.parse(event.data);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Per-read buffer for byte streams. An open stream holds it the whole time it waits for Vertex,
 * so its size is paid per stream: 4 KiB instead of 16 KiB took 10 MB off 1000 open streams on
 * Deno. A Vertex text chunk is well under it; a larger one takes more reads, and whole events
 * are reassembled the same way either way.
 */
const READ_BUFFER_BYTES = 4 * 1024;

type ChunkReader = Pick<ReadableStreamDefaultReader<Uint8Array>, 'read' | 'cancel' | 'releaseLock'>;

/**
 * Reads a body chunk by chunk. Fetch bodies are byte streams, and reading one into a buffer of
 * our own (kept per stream, each chunk copied out) spares the runtime a fresh 64 KiB buffer per
 * read, which dominated memory and garbage collection with many streams open. Other streams
 * are read the ordinary way.
 */
function chunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = body.getReader({ mode: 'byob' });
  } catch {
    return body.getReader();
  }
  let buffer = new ArrayBuffer(READ_BUFFER_BYTES);
  return {
    async read() {
      const result = await byob.read(new Uint8Array(buffer));
      if (result.done || !result.value) return { done: true, value: undefined };
      buffer = result.value.buffer as ArrayBuffer;
      return { done: false, value: result.value.slice() };
    },
    cancel: (reason) => byob.cancel(reason),
    releaseLock: () => byob.releaseLock(),
  };
}

const emptyStreamError = () =>
  new GatewayError(
    502,
    'api_error',
    'upstream_stream_interrupted',
    'The Vertex AI stream ended without sending any event.',
  );

const interruptedError = () =>
  new GatewayError(
    502,
    'api_error',
    'upstream_stream_interrupted',
    'The Vertex AI stream broke off before the answer was complete.',
  );

const idleTimeoutError = (ms: number) =>
  new GatewayError(
    504,
    'api_error',
    'stream_idle_timeout',
    `Vertex AI sent nothing for ${ms} ms (STREAM_IDLE_TIMEOUT_MS), so the answer is incomplete.`,
  );

/**
 * The index just past the last blank line (the end of the last whole event), or 0. SSE lines
 * end in CRLF, LF or CR (WHATWG HTML §9.2.5), and Google uses CRLF on some paths.
 */
export function afterLastEventEnd(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i > 0; i--) {
    const c = bytes[i];
    if (c !== LF && c !== CR) continue;
    let before = i - 1;
    if (c === LF && bytes[before] === CR) before--;
    const b = bytes[before];
    if (b === LF || b === CR) return i + 1;
  }
  return 0;
}

/**
 * Which of the `"error"` and `"usage"` keys occur in the bytes (HAS_ERROR | HAS_USAGE), in one
 * pass over the quotes, found by the runtime's native search. It runs on every event of every
 * stream: two separate searches took twice the time in a tight loop (3.8 against 1.3–2.0 µs per
 * 1.2 KB event). A hit is only a hint; the events are then parsed to be sure.
 */
export function markersIn(bytes: Uint8Array): number {
  let found = 0;
  for (let i = bytes.indexOf(QUOTE); i !== -1; i = bytes.indexOf(QUOTE, i + 1)) {
    const next = bytes[i + 1];
    if (next === ERROR_KEY[1] && matchesAt(bytes, ERROR_KEY, i)) found |= HAS_ERROR;
    else if (next === USAGE_KEY[1] && matchesAt(bytes, USAGE_KEY, i)) found |= HAS_USAGE;
    if (found === (HAS_ERROR | HAS_USAGE)) break;
  }
  return found;
}

/** An unfinished last event with the blank line after it, in the line ending it already uses. */
function withEventEnd(tail: Uint8Array): Uint8Array {
  return concatBytes([tail, eventEndAfter(tail)]);
}

/** What ends the event whose bytes end with `tail` (its last two bytes are enough). */
function eventEndAfter(tail: Uint8Array): Uint8Array {
  const last = tail[tail.length - 1];
  if (last === LF) return tail[tail.length - 2] === CR ? CRLF : LF_ONLY;
  if (last === CR) return CR_ONLY;
  return LF_LF;
}

/**
 * Splits whole events into their byte offset, their joined `data:` lines, and whether they have a
 * data field at all (a bare `data` line is one, with an empty value).
 */
function* events(bytes: Uint8Array): Generator<{ start: number; data: string; hasData: boolean }> {
  const decoder = new TextDecoder();
  for (let start = 0; start < bytes.length; ) {
    const end = nextEventEnd(bytes, start);
    const lines = decoder
      .decode(bytes.subarray(start, end))
      .split(/\r\n|\n|\r/)
      .filter((line) => line === 'data' || line.startsWith('data:'));
    const data = lines.map((line) => line.slice(line[5] === ' ' ? 6 : 5)).join('\n');
    yield { start, data, hasData: lines.length > 0 };
    start = end;
  }
}

/** The index just past the first blank line at or after `from`, or the length if none. */
function nextEventEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length; i++) {
    const c = bytes[i];
    if (c !== LF && c !== CR) continue;
    const next = c === CR && bytes[i + 1] === LF ? i + 2 : i + 1;
    const n = bytes[next];
    if (n === LF) return next + 1;
    if (n === CR) return bytes[next + 1] === LF ? next + 2 : next + 1;
  }
  return bytes.length;
}

/** The first event whose JSON has a top-level `error`, as an OpenAI-shaped GatewayError. */
function findErrorEvent(bytes: Uint8Array): { start: number; error: GatewayError } | null {
  for (const event of events(bytes)) {
    const json = parseObject(event.data);
    if (json && 'error' in json && json.error) {
      return { start: event.start, error: errorFromEvent(json.error) };
    }
  }
  return null;
}

function errorFromEvent(error: unknown): GatewayError {
  const google = typeof error === 'object' && error !== null ? (error as GoogleError) : null;
  return gatewayErrorFromGoogle(google, typeof google?.code === 'number' ? google.code : 500, {
    code: 'upstream_stream_error',
    message:
      typeof error === 'string' && error !== ''
        ? error
        : 'Vertex AI reported an error in the middle of the stream.',
  });
}

function lastUsage(block: Uint8Array): unknown {
  let usage: unknown;
  for (const event of events(block)) {
    const json = parseObject(event.data);
    if (json?.usage) usage = json.usage;
  }
  return usage;
}

/** An event's JSON object; Vertex may wrap one in a one-element array, as it does its errors. */
function parseObject(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (Array.isArray(value) && value.length === 1) value = value[0];
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}
