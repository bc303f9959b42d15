import { describe, expect, it } from 'vitest';
import { createMemoryRateLimiter } from '../../src/limits/memory-rate-limiter.ts';

const T0 = 1_750_000_000_500;

function clock(start = T0) {
  let nowMs = start;
  return {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

describe('createMemoryRateLimiter', () => {
  it('limits each key to its rpm and answers a truthful Retry-After', async () => {
    const time = clock();
    const limiter = createMemoryRateLimiter({ now: time.now });
    for (let i = 0; i < 4; i++) expect((await limiter.take('app', 4)).allowed).toBe(true);
    const refused = await limiter.take('app', 4);
    expect(refused).toEqual({ allowed: false, limit: 4, remaining: 0, retryAfterSeconds: 61 });
    time.advance(60_000);
    expect((await limiter.take('app', 4)).allowed).toBe(false);
    time.advance(1_000);
    expect(await limiter.take('app', 4)).toEqual({ allowed: true, limit: 4, remaining: 3 });
  });

  it('keeps keys independent', async () => {
    const limiter = createMemoryRateLimiter({ now: clock().now });
    expect((await limiter.take('alpha', 1)).allowed).toBe(true);
    expect((await limiter.take('alpha', 1)).allowed).toBe(false);
    expect(await limiter.take('beta', 1)).toEqual({ allowed: true, limit: 1, remaining: 0 });
    expect((await limiter.take('beta', 1)).allowed).toBe(false);
    expect((await limiter.take('alpha', 1)).allowed).toBe(false);
  });

  it('counts concurrent takes exactly', async () => {
    const limiter = createMemoryRateLimiter({ now: clock().now });
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => limiter.take('app', 5)));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(5);
  });

  it('forgets idle keys without forgetting a live window', async () => {
    const time = clock();
    const limiter = createMemoryRateLimiter({ now: time.now });
    await limiter.take('idle', 1);
    await limiter.take('busy', 2);
    time.advance(59_000);
    await limiter.take('busy', 2);
    expect(limiter.trackedKeys).toBe(2);
    // A sweep runs here: 'idle' is out of its window, 'busy' still has a request in it.
    time.advance(3_000);
    expect((await limiter.take('busy', 2)).allowed).toBe(true);
    expect(limiter.trackedKeys).toBe(1);
    expect((await limiter.take('busy', 2)).allowed).toBe(false);
    expect((await limiter.take('idle', 1)).allowed).toBe(true);
    expect((await limiter.take('idle', 1)).allowed).toBe(false);
  });

  it('uses the real clock when none is given', async () => {
    const limiter = createMemoryRateLimiter();
    expect(await limiter.take('app', 1)).toEqual({ allowed: true, limit: 1, remaining: 0 });
    const refused = await limiter.take('app', 1);
    expect(refused.allowed).toBe(false);
  });
});
