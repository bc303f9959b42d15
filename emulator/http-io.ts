import type { IncomingMessage, ServerResponse } from 'node:http';

/** Generous, because image parts may arrive inline as base64 data URLs. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export class BodyTooLargeError extends Error {}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLargeError(`body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

export function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(JSON.stringify(body));
  writeJsonHead(res, status, bytes.length, headers);
  res.end(bytes);
}

function writeJsonHead(
  res: ServerResponse,
  status: number,
  length: number,
  headers: Record<string, string>,
): void {
  res.writeHead(status, {
    // Google's own spelling of the JSON content type.
    'content-type': 'application/json; charset=UTF-8',
    'content-length': length,
    ...headers,
  });
}

/**
 * Cuts the connection once what was written has gone out, as a network failure would after it:
 * a plain destroy drops whatever is still queued.
 */
export function cutAfterFlush(res: ServerResponse): void {
  if (res.socket) res.socket.destroySoon();
  else res.destroy();
}

/**
 * Like sendJson, but the second half of the body comes only after `stallMs`, or never (`cut`: the
 * connection is cut instead): the headers and half the JSON arrive at once, so a client has
 * committed to the answer and must wait on its body.
 */
export async function sendJsonWithStall(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string>,
  stallMs: number,
  cut = false,
): Promise<void> {
  if (stallMs <= 0 && !cut) return sendJson(res, status, body, headers);
  // Split as bytes: a string split could fall inside a surrogate pair and change the length.
  const bytes = Buffer.from(JSON.stringify(body));
  writeJsonHead(res, status, bytes.length, headers);
  const half = Math.floor(bytes.length / 2);
  res.write(bytes.subarray(0, half));
  await sleep(stallMs, clientGone(res));
  if (res.destroyed) return;
  if (cut) cutAfterFlush(res);
  else res.end(bytes.subarray(half));
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** An AbortSignal that fires when the client goes away before the response has ended. */
export function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
