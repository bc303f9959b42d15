import { describe, expect, it } from 'vitest';
import { createFallbackRateLimiter } from '../../src/limits/fallback-rate-limiter.ts';
import { createMemoryRateLimiter } from '../../src/limits/memory-rate-limiter.ts';
import type { RateLimiter, RateLimitVerdict } from '../../src/limits/rate-limiter.ts';

/** A shared store that fails while `down` is set. */
function flakyStore() {
  const store = { down: true, calls: 0 };
  const inner = createMemoryRateLimiter();
  const limiter: RateLimiter = {
    async take(key, rpm) {
      store.calls++;
      if (store.down) throw new Error('Durable Object reset because its code was updated.');
      return inner.take(key, rpm);
    },
  };
  return { store, limiter };
}

describe('createFallbackRateLimiter', () => {
  it('counts in memory while the shared store fails, warning once without the key name', async () => {
    const { store, limiter } = flakyStore();
    const lines: string[] = [];
    const limited = createFallbackRateLimiter(limiter, {
      store: 'durable_object',
      warn: (line) => lines.push(line),
    });
    const verdicts = await Promise.all(
      Array.from({ length: 5 }, () => limited.take('team-secret-name', 3)),
    );
    expect(verdicts.map((v) => v.allowed)).toEqual([true, true, true, false, false]);
    expect(store.calls).toBe(5);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      level: 'warn',
      message: 'rate limiter: shared store failed; counting in this isolate until it recovers',
      store: 'durable_object',
      error: 'Error: Durable Object reset because its code was updated.',
    });
    expect(lines[0]).not.toContain('team-secret-name');
  });

  it('returns to the shared store as soon as it answers again', async () => {
    const { store, limiter } = flakyStore();
    const limited = createFallbackRateLimiter(limiter, { store: 'deno_kv', warn: () => {} });
    await limited.take('app', 1);
    store.down = false;
    // The shared store has not seen the request counted in memory: it starts its own count.
    expect((await limited.take('app', 1)).allowed).toBe(true);
    expect((await limited.take('app', 1)).allowed).toBe(false);
    expect(store.calls).toBe(3);
  });

  it('names a non-Error failure by its type only', async () => {
    const lines: string[] = [];
    const limited = createFallbackRateLimiter(
      {
        take: () => Promise.reject('a string with anything in it'),
      },
      { store: 'deno_kv', warn: (line) => lines.push(line) },
    );
    expect((await limited.take('app', 1)).allowed).toBe(true);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ error: 'string' });
  });
});

describe('createFallbackRateLimiter with a store that stalls', () => {
  it('counts in memory once the store has not answered within timeoutMs', async () => {
    const lines: string[] = [];
    const stalled: RateLimiter = { take: () => new Promise(() => {}) };
    const limited = createFallbackRateLimiter(stalled, {
      store: 'deno_kv',
      timeoutMs: 20,
      warn: (line) => lines.push(line),
    });
    const verdicts = await Promise.all([limited.take('app', 1), limited.take('app', 1)]);
    expect(verdicts.map((v) => v.allowed)).toEqual([true, false]);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '').error).toBe('StoreTimeout: no answer within 20 ms');
  });
});

describe('createFallbackRateLimiter across outages', () => {
  it('warns once per outage: again after the store recovered and failed anew', async () => {
    const { store, limiter } = flakyStore();
    const lines: string[] = [];
    const limited = createFallbackRateLimiter(limiter, {
      store: 'durable_object',
      warn: (line) => lines.push(line),
    });
    await limited.take('a', 100);
    await limited.take('a', 100);
    expect(lines).toHaveLength(1);
    store.down = false;
    await limited.take('a', 100);
    store.down = true;
    await limited.take('a', 100);
    await limited.take('a', 100);
    expect(lines).toHaveLength(2);
  });
});

describe('createFallbackRateLimiter holding refusals', () => {
  /** A healthy shared store that admits `admit` requests, then refuses for 30 s. */
  function countingStore(admit: number) {
    const store = { calls: 0 };
    const limiter: RateLimiter = {
      async take(_key, rpm) {
        store.calls++;
        if (store.calls <= admit) return { allowed: true, limit: rpm, remaining: 0 };
        return { allowed: false, limit: rpm, remaining: 0, retryAfterSeconds: 30 };
      },
    };
    return { store, limiter };
  }

  it('answers a refused key from memory until its Retry-After, then asks the store again', async () => {
    const { store, limiter } = countingStore(1);
    let clock = 1_000_000;
    const limited = createFallbackRateLimiter(limiter, {
      store: 'durable_object',
      now: () => clock,
    });
    expect((await limited.take('team', 1)).allowed).toBe(true);
    expect(await limited.take('team', 1)).toEqual({
      allowed: false,
      limit: 1,
      remaining: 0,
      retryAfterSeconds: 30,
    });
    // A flood of refused requests costs the store nothing more.
    for (let i = 0; i < 50; i++) await limited.take('team', 1);
    expect(store.calls).toBe(2);
    clock += 12_500;
    expect(await limited.take('team', 1)).toMatchObject({ allowed: false, retryAfterSeconds: 18 });
    expect(store.calls).toBe(2);
    clock += 17_500;
    await limited.take('team', 1);
    expect(store.calls).toBe(3);
  });

  it('holds a refusal for its own key and limit only', async () => {
    const { store, limiter } = countingStore(0);
    const limited = createFallbackRateLimiter(limiter, { store: 'deno_kv', now: () => 0 });
    await limited.take('a', 1);
    await limited.take('b', 1);
    // The same name with another limit, as after a config change, is asked afresh.
    await limited.take('a', 5);
    await limited.take('a', 1);
    expect(store.calls).toBe(3);
  });
});

describe('createFallbackRateLimiter dropping held refusals', () => {
  it('drops a hold when the store admits the key after all (a request that was in flight)', async () => {
    let calls = 0;
    const answers: RateLimitVerdict[] = [
      { allowed: false, limit: 2, remaining: 0, retryAfterSeconds: 30 },
      { allowed: true, limit: 2, remaining: 0 },
    ];
    // The refusal and then the admission come back to two requests sent together.
    const store: RateLimiter = { take: async () => answers[calls++] as RateLimitVerdict };
    const limited = createFallbackRateLimiter(store, { store: 'durable_object', now: () => 0 });
    await Promise.all([limited.take('team', 2), limited.take('team', 2)]);
    await limited.take('team', 2);
    expect(calls).toBe(3);
  });
});
