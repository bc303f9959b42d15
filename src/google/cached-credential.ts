/** A bearer for Vertex and the moment to stop reusing it. */
export interface CachedToken {
  token: string;
  refreshAt: number;
}

export interface AccessTokenSource {
  /** A valid bearer for Vertex, from the cache or one fresh one shared by all callers. */
  getToken(): Promise<string>;
  /** Forget `token` if it is the cached one (Vertex said it is no longer valid). */
  invalidate(token: string): void;
}

export interface CacheOptions {
  now: () => number;
  /** No caller waits on a shared `produce` longer than this; past it, it starts its own. */
  timeoutMs: number;
  /** The error for a caller whose own attempt also went past `timeoutMs`. */
  timedOut: () => Error;
}

interface Inflight {
  promise: Promise<CachedToken>;
  startedAt: number;
}

/**
 * Caches what `produce` makes (an exchanged access token, a self-signed JWT) in memory per
 * isolate, until its `refreshAt`. Concurrent callers share one `produce`; the shared promise
 * settles to plain data, so no I/O object crosses from one request to another (which Workers
 * forbids). A failure is not cached: the next caller tries again.
 *
 * On Workers, work started by a request belongs to it: if that client disconnects, the runtime
 * may cancel it and every continuation waiting on it. So no waiter trusts a shared `produce`
 * longer than `timeoutMs` on its own clock; past that, it starts a fresh one.
 */
export function createCachedCredential(
  produce: () => Promise<CachedToken>,
  options: CacheOptions,
): AccessTokenSource {
  const { now, timeoutMs } = options;
  let cached: CachedToken | null = null;
  let inflight: Inflight | null = null;

  function start(): Inflight {
    const started: Inflight = {
      startedAt: Date.now(),
      promise: produce()
        .then((fresh) => {
          cached = fresh;
          return fresh;
        })
        .finally(() => {
          if (inflight === started) inflight = null;
        }),
    };
    return started;
  }

  return {
    async getToken() {
      // Twice at most: the shared attempt, then, if that one went quiet, our own.
      for (let attempt = 0; attempt < 2; attempt++) {
        if (cached && now() < cached.refreshAt) return cached.token;
        if (!inflight || Date.now() - inflight.startedAt >= timeoutMs) inflight = start();
        const current = inflight;
        const fresh = await withinDeadline(
          current.promise,
          timeoutMs - (Date.now() - current.startedAt),
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
