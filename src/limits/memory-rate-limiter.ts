import type { RateLimiter } from './rate-limiter.ts';
import { admit, type WindowState } from './sliding-window.ts';

export interface MemoryRateLimiterOptions {
  now?: () => number;
}

// How often idle keys are forgotten; one window, so the map holds at most a minute's keys more.
const SWEEP_INTERVAL_MS = 61_000;

/**
 * Counts per key in this isolate or process only. The limit holds across instances only where a
 * single instance serves the gateway (locally, one `deno serve`); the runtimes' shared stores fall
 * back to it when they fail.
 */
export function createMemoryRateLimiter(
  options: MemoryRateLimiterOptions = {},
): RateLimiter & { readonly trackedKeys: number } {
  const now = options.now ?? Date.now;
  const windows = new Map<string, WindowState>();
  let lastSweepMs = -Infinity;

  // Keys come from configuration, but a long-lived isolate sees configuration change. A key whose
  // newest request is out of the window has nothing left to count: forgetting it changes no verdict.
  function sweep(nowMs: number): void {
    if (Math.abs(nowMs - lastSweepMs) < SWEEP_INTERVAL_MS) return;
    lastSweepMs = nowMs;
    const oldestLive = Math.floor(nowMs / 1000) - 60;
    for (const [key, state] of windows) {
      if ((state.at(-1)?.[0] ?? -Infinity) < oldestLive) windows.delete(key);
    }
  }

  return {
    scope: 'isolate',
    get trackedKeys() {
      return windows.size;
    },
    async take(key, requestsPerMinute) {
      const nowMs = now();
      sweep(nowMs);
      const { state, verdict } = admit(windows.get(key), nowMs, requestsPerMinute);
      windows.set(key, state);
      return verdict;
    },
  };
}
