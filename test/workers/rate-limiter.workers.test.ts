/// <reference types="@cloudflare/vitest-plugin/types" />
import { evictDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { RateLimiter } from '../../src/limits/rate-limiter.ts';
import {
  createDurableObjectRateLimiter,
  type RateLimiterDurableObject,
} from '../../src/runtime/workers-rate-limiter.ts';

// These run inside workerd against the real RATE_LIMITER binding from wrangler.toml. Each test
// uses fresh key names, so the objects other tests created do not interfere.
const namespace = (
  env as unknown as { RATE_LIMITER: DurableObjectNamespace<RateLimiterDurableObject> }
).RATE_LIMITER;

const freshKey = (label: string) => `${label}-${crypto.randomUUID()}`;

/** A limiter whose fallback would be noticed: it must never be needed with a working binding. */
function sharedOnly(): { limiter: RateLimiter; warnings: string[] } {
  const warnings: string[] = [];
  const limiter = createDurableObjectRateLimiter(namespace, {
    warn: (line) => warnings.push(line),
  });
  return { limiter, warnings };
}

const allowed = async (limiter: RateLimiter, key: string, rpm: number) =>
  (await limiter.take(key, rpm)).allowed;

describe('the Durable Object rate limiter in workerd', () => {
  it('shares one limit between separately created adapters, as two isolates would', async () => {
    const a = sharedOnly();
    const b = sharedOnly();
    const key = freshKey('shared');
    expect(await a.limiter.take(key, 3)).toEqual({ allowed: true, limit: 3, remaining: 2 });
    expect(await b.limiter.take(key, 3)).toEqual({ allowed: true, limit: 3, remaining: 1 });
    expect(await a.limiter.take(key, 3)).toEqual({ allowed: true, limit: 3, remaining: 0 });
    const refused = await b.limiter.take(key, 3);
    expect(refused).toMatchObject({ allowed: false, limit: 3, remaining: 0 });
    expect(refused.allowed || refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refused.allowed || refused.retryAfterSeconds).toBeLessThanOrEqual(61);
    expect(await allowed(a.limiter, key, 3)).toBe(false);
    expect([...a.warnings, ...b.warnings]).toEqual([]);
  });

  it('counts concurrent requests from two adapters exactly', async () => {
    const a = sharedOnly();
    const b = sharedOnly();
    const key = freshKey('concurrent');
    const verdicts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).limiter.take(key, 5)),
    );
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(5);
    expect([...a.warnings, ...b.warnings]).toEqual([]);
  });

  it('keeps keys independent', async () => {
    const { limiter } = sharedOnly();
    const first = freshKey('first');
    const second = freshKey('second');
    expect(await allowed(limiter, first, 1)).toBe(true);
    expect(await allowed(limiter, first, 1)).toBe(false);
    expect(await allowed(limiter, second, 1)).toBe(true);
    expect(await allowed(limiter, second, 1)).toBe(false);
  });

  it('keeps the count when the object is evicted from memory (hibernation, restarts)', async () => {
    const { limiter } = sharedOnly();
    const key = freshKey('evicted');
    expect(await allowed(limiter, key, 2)).toBe(true);
    expect(await allowed(limiter, key, 2)).toBe(true);
    await evictDurableObject(namespace.get(namespace.idFromName(key)));
    expect(await allowed(limiter, key, 2)).toBe(false);
  });

  it('counts in this isolate, with one warning, when the object cannot be reached', async () => {
    const broken = {
      idFromName: (name: string) => namespace.idFromName(name),
      get: () => ({
        take: () => Promise.reject(new Error('Durable Object is overloaded.')),
      }),
    } as unknown as DurableObjectNamespace<RateLimiterDurableObject>;
    const warnings: string[] = [];
    const limiter = createDurableObjectRateLimiter(broken, {
      warn: (line) => warnings.push(line),
    });
    const key = freshKey('broken');
    expect(await allowed(limiter, key, 2)).toBe(true);
    expect(await allowed(limiter, key, 2)).toBe(true);
    expect(await allowed(limiter, key, 2)).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0] ?? '')).toMatchObject({
      level: 'warn',
      store: 'durable_object',
      error: 'Error: Durable Object is overloaded.',
    });
  });
});
