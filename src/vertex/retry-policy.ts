/** Statuses Google documents as transient: quota (429) and the server-side 5xx family. */
const RETRYABLE_STATUSES = new Set([429, 500, 502, 503, 504]);

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 8_000;

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/**
 * Milliseconds to wait before retry number `retry` (0 for the first retry): the server's
 * Retry-After when it gave one, else exponential backoff with full jitter (AWS Architecture
 * Blog, "Exponential Backoff and Jitter"), so a burst of failing clients does not retry in step.
 */
export function retryDelayMs(
  retry: number,
  retryAfter: string | null,
  random: () => number,
  now: () => number,
): number {
  const serverDelay = retryAfter === null ? null : parseRetryAfterMs(retryAfter, now);
  if (serverDelay !== null) return serverDelay;
  return Math.floor(random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** retry));
}

// The three HTTP-date forms (RFC 9110 §5.6.7) all name the month and give hh:mm:ss. Date.parse
// alone would also take "1.5" or "-1" for dates, and so retry at once.
const HTTP_DATE_SHAPE =
  /\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b.*\b\d\d:\d\d:\d\d\b/;

/** RFC 9110 §10.2.3: Retry-After is delay-seconds or an HTTP-date. Null when unreadable. */
export function parseRetryAfterMs(value: string, now: () => number): number | null {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!HTTP_DATE_SHAPE.test(text)) return null;
  // asctime dates name no zone but are UTC; Date.parse would read them in local time.
  const date = Date.parse(/GMT$/.test(text) ? text : `${text} GMT`);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now());
}

/** Resolves after `ms`, or early (without error) when `signal` aborts: the caller re-checks. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
