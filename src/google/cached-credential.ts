/** A bearer for Vertex, when to start replacing it, and when to stop sending it. */
export interface CachedToken {
  token: string;
  /** From here on a replacement is made; until `usableUntil` the token serves meanwhile. */
  refreshAt: number;
  /** Past this the token is not sent, so that none lapses on its way to Vertex. */
  usableUntil: number;
}

/** Keeps work running past the end of the request that started it: Workers' ExecutionContext. */
export interface KeepAlive {
  waitUntil(work: Promise<unknown>): void;
}

export interface AccessTokenSource {
  /**
   * A valid bearer for Vertex, from the cache or one fresh one shared by all callers. Each
   * exchange it starts is handed to `keepAlive`, where the runtime has one.
   */
  getToken(keepAlive?: KeepAlive): Promise<string>;
  /** Forget `token` if it is the cached one (Vertex said it is no longer valid). */
  invalidate(token: string): void;
}

export interface CacheOptions {
  now: () => number;
  /**
   * The deadline `produce` keeps on its own. A caller waits for a shared one a little longer
   * (so a bounded `produce` settles, with its own error, first); past that, it starts its own.
   */
  timeoutMs: number;
  /** The error for a caller whose own attempt also went past `timeoutMs`. */
  timedOut: () => Error;
  /** Told of a refresh that failed while the old token still served, which no caller sees. */
  onRefreshFailed?: (error: unknown) => void;
}

// Google's Node library refreshes this long before expiry; so do we, without making anyone wait.
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
// The old token serves until this close to its expiry, while the refresh is under way.
const USABLE_MARGIN_MS = 60 * 1000;
// After a refresh failed, the old token serves this long before the next attempt, so a key
// Google refuses does not cost an exchange per request.
const REFRESH_PAUSE_MS = 5000;

/**
 * When a token that lapses at `expiresAt` is refreshed, and until when it is sent. Short-lived
 * tokens (emulators) are refreshed at half their life and kept from their last quarter.
 */
export function refreshWindow(
  expiresAt: number,
  lifetimeMs: number,
): Pick<CachedToken, 'refreshAt' | 'usableUntil'> {
  return {
    refreshAt: expiresAt - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2),
    usableUntil: expiresAt - Math.min(USABLE_MARGIN_MS, lifetimeMs / 4),
  };
}

interface Inflight {
  promise: Promise<CachedToken>;
  startedAt: number;
}

/**
 * Caches what `produce` makes (an exchanged access token, a self-signed JWT) in memory per
 * isolate. Concurrent callers share one `produce`; the shared promise settles to plain data, so
 * no I/O object crosses from one request to another (which Workers forbids). A failure is not
 * cached: the next caller tries again.
 *
 * Between `refreshAt` and `usableUntil` the cached token is still good: callers get it at once
 * while one replacement is made behind them. So no request waits for the routine refresh, and a
 * token endpoint that fails or stalls then costs nothing until the token really runs out. A
 * failed refresh is reported (no caller sees it) and tried again after a pause.
 *
 * On Workers, work started by a request belongs to it: when that request ends, the runtime may
 * cancel it and every continuation waiting on it. So each `produce` it starts goes to the
 * caller's `keepAlive` (the refresh behind a request above all, which nobody waits for), and no
 * waiter trusts a shared `produce` past its deadline (plus a grace) on its own clock; past that,
 * it starts a fresh one.
 */
export function createCachedCredential(
  produce: () => Promise<CachedToken>,
  options: CacheOptions,
): AccessTokenSource {
  // A bounded `produce` overruns its deadline by the time it spends before arming it (signing,
  // a cold key import): the grace lets it settle with its own error instead of a second attempt.
  const waitMs = options.timeoutMs + Math.min(1000, options.timeoutMs);
  const { now } = options;
  let cached: CachedToken | null = null;
  let inflight: Inflight | null = null;
  let refreshPausedUntil = 0;

  /**
   * Starts the one shared `produce`, kept alive by the caller's runtime until it settles. A
   * failure while the cached token still serves is one no caller sees: it is reported, and the
   * next attempt waits a pause.
   */
  function start(keepAlive: KeepAlive | undefined): Inflight {
    const started: Inflight = {
      startedAt: Date.now(),
      promise: produce()
        .then((fresh) => {
          // One given up as stale may finish after a newer one: the newer one stays.
          if (!cached || fresh.refreshAt >= cached.refreshAt) cached = fresh;
          return fresh;
        })
        .finally(() => {
          if (inflight === started) inflight = null;
        }),
    };
    const settled = started.promise.then(
      () => {},
      (error: unknown) => {
        if (!cached || now() >= cached.usableUntil) return; // its waiters had the error
        refreshPausedUntil = Date.now() + REFRESH_PAUSE_MS;
        try {
          options.onRefreshFailed?.(error);
        } catch {
          // A log sink that throws must not turn into an unhandled rejection.
        }
      },
    );
    try {
      keepAlive?.waitUntil(settled);
    } catch {
      // A host's context that cannot keep work alive: the refresh runs on unkept.
    }
    return started;
  }

  return {
    async getToken(keepAlive) {
      // Twice at most: the shared attempt, then, if that one went quiet, our own.
      for (let attempt = 0; attempt < 2; attempt++) {
        const time = now();
        if (cached && time < cached.refreshAt) return cached.token;
        if (inflight && Date.now() - inflight.startedAt >= waitMs) inflight = null;
        if (cached && time < cached.usableUntil) {
          if (!inflight && Date.now() >= refreshPausedUntil) inflight = start(keepAlive);
          return cached.token;
        }
        inflight ??= start(keepAlive);
        const current = inflight;
        const fresh = await withinDeadline(
          current.promise,
          waitMs - (Date.now() - current.startedAt),
        );
        if (fresh) return fresh.token;
        if (inflight === current) inflight = null;
      }
      throw options.timedOut();
    },
    invalidate(token) {
      if (cached?.token === token) cached = null;
    },
  };
}

/** Settles with the promise's value, or with null once `ms` pass on this caller's own timer. */
async function withinDeadline<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
