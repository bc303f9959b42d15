import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { googleError } from './google-errors.ts';
import { sleep } from './http-io.ts';

export interface StreamPlan {
  id: string;
  created: number;
  model: string;
  pieces: string[];
  finishReason: string;
  thoughtSignature?: string;
  /** Present when the request asked for `stream_options.include_usage`. */
  usage?: object;
  firstChunkDelayMs: number;
  chunkDelayMs: number;
  errorEventAfterChunks?: number;
  errorMessage?: string;
  abortAfterChunks?: number;
  truncateAfterChunks?: number;
  omitDone: boolean;
  /** What ends each line: an event is `data: ...` and a blank line, both ended this way. */
  lineEnd: '\n' | '\r\n';
}

/** 'aborted' means the plan asks for the connection to be cut now; the caller does that. */
export type StreamEnd = 'completed' | 'cancelled' | 'aborted' | 'truncated' | 'error-event';

export function openEventStream(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    ...headers,
  });
  // Send headers now: a gateway must be able to see the 200 before the first chunk exists.
  res.flushHeaders();
}

/** Writes one event and waits out backpressure; false once the client has gone. */
async function send(
  res: ServerResponse,
  data: string,
  lineEnd: string,
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.aborted || res.destroyed) return false;
  if (!res.write(`data: ${data}${lineEnd}${lineEnd}`)) {
    try {
      await once(res, 'drain', { signal });
    } catch {
      return false;
    }
  }
  return !signal.aborted;
}

/**
 * Streams the answer chunk by chunk. Each event is written as soon as it is due (no
 * buffering), and writing stops the moment `signal` reports that the client left.
 */
export async function writeCompletionStream(
  res: ServerResponse,
  plan: StreamPlan,
  signal: AbortSignal,
): Promise<StreamEnd> {
  const envelope = (choices: unknown[], extra: object = {}) =>
    JSON.stringify({
      id: plan.id,
      object: 'chat.completion.chunk',
      created: plan.created,
      model: plan.model,
      choices,
      ...extra,
    });

  for (const [index, piece] of plan.pieces.entries()) {
    if (index === plan.abortAfterChunks) {
      return 'aborted';
    }
    if (index === plan.errorEventAfterChunks) return endWithError(res, plan, signal);
    await sleep(index === 0 ? plan.firstChunkDelayMs : plan.chunkDelayMs, signal);
    const delta: Record<string, unknown> = index === 0 ? { role: 'assistant' } : {};
    // An empty answer (a safety block, say) sends no content rather than an empty string.
    if (piece !== '') delta.content = piece;
    if (index === 0 && plan.thoughtSignature !== undefined) {
      delta.extra_content = { google: { thought_signature: plan.thoughtSignature } };
    }
    const last = index === plan.pieces.length - 1;
    const choice = { index: 0, delta, finish_reason: last ? plan.finishReason : null };
    if (index === plan.truncateAfterChunks) return endInsideEvent(res, envelope([choice]));
    if (!(await send(res, envelope([choice]), plan.lineEnd, signal))) return 'cancelled';
  }
  if (plan.truncateAfterChunks !== undefined) {
    // Past the last chunk, the next event is the one cut: the usage event, or else [DONE].
    return endInsideEvent(res, plan.usage ? envelope([], { usage: plan.usage }) : '[DONE]');
  }
  if (plan.abortAfterChunks !== undefined && plan.abortAfterChunks >= plan.pieces.length) {
    return 'aborted';
  }
  if (plan.errorEventAfterChunks !== undefined) return endWithError(res, plan, signal);
  if (plan.usage && !(await send(res, envelope([], { usage: plan.usage }), plan.lineEnd, signal))) {
    return 'cancelled';
  }
  if (!plan.omitDone && !(await send(res, '[DONE]', plan.lineEnd, signal))) return 'cancelled';
  res.end();
  return 'completed';
}

/** Half of an event's data line, then a clean end of the response: no blank line, no error. */
function endInsideEvent(res: ServerResponse, data: string): StreamEnd {
  res.end(`data: ${data.slice(0, Math.ceil(data.length / 2))}`);
  return 'truncated';
}

async function endWithError(
  res: ServerResponse,
  plan: StreamPlan,
  signal: AbortSignal,
): Promise<StreamEnd> {
  const body = googleError(500, plan.errorMessage ?? 'Internal error encountered.');
  if (!(await send(res, JSON.stringify(body), plan.lineEnd, signal))) return 'cancelled';
  res.end();
  return 'error-event';
}
