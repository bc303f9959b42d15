import { createKvRateLimiter, type RateLimitKv } from '../../src/runtime/deno-rate-limiter.ts';

// Deno KV on a temporary SQLite file. Two handles on one file stand for two gateway instances
// sharing a database, as on Deno Deploy or two local processes with the same DENO_KV_DEFAULT_PATH.

function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/**
 * Counts the operations that lost a race, to show the retry path ran: a commit whose check failed,
 * or a read or commit that SQLite refused because the other handle held the write lock.
 */
function watched(kv: Deno.Kv): { kv: RateLimitKv; lostRaces: () => number } {
  let lost = 0;
  async function counted<T>(operation: Promise<T>): Promise<T> {
    try {
      return await operation;
    } catch (error) {
      lost++;
      throw error;
    }
  }
  return {
    lostRaces: () => lost,
    kv: {
      get: (key, options) => counted(kv.get(key, options)),
      atomic: () => {
        const operation = kv.atomic();
        const commit = operation.commit.bind(operation);
        operation.commit = async () => {
          const result = await counted(commit());
          if (!result.ok) lost++;
          return result;
        };
        return operation;
      },
    },
  };
}

async function withTwoHandles(
  test: (first: Deno.Kv, second: Deno.Kv, path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: 'gateway-kv-' });
  const path = `${dir}/rate-limits.sqlite3`;
  const first = await Deno.openKv(path);
  const second = await Deno.openKv(path);
  try {
    await test(first, second, path);
  } finally {
    first.close();
    second.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function collectWarnings() {
  const lines: string[] = [];
  return { lines, warn: (line: string) => lines.push(line) };
}

const allowedCount = async (verdicts: Promise<{ allowed: boolean }[]>) =>
  (await verdicts).filter((v) => v.allowed).length;

Deno.test('two Deno KV handles on one database share one limit', async () => {
  await withTwoHandles(async (first, second) => {
    const warnings = collectWarnings();
    const a = createKvRateLimiter(first, { warn: warnings.warn });
    const b = createKvRateLimiter(second, { warn: warnings.warn });
    const verdicts = [
      await a.take('shared', 3),
      await b.take('shared', 3),
      await a.take('shared', 3),
      await b.take('shared', 3),
      await a.take('shared', 3),
    ];
    assertEquals(
      verdicts.map((v) => [v.allowed, v.remaining]),
      [
        [true, 2],
        [true, 1],
        [true, 0],
        [false, 0],
        [false, 0],
      ],
      'verdicts',
    );
    const refused = verdicts[3];
    if (refused?.allowed !== false || refused.retryAfterSeconds < 1) {
      throw new Error(`expected a refusal with Retry-After, got ${JSON.stringify(refused)}`);
    }
    assertEquals(warnings.lines, [], 'warnings');
  });
});

Deno.test('keys are independent', async () => {
  await withTwoHandles(async (first) => {
    const limiter = createKvRateLimiter(first);
    const results = [
      (await limiter.take('alpha', 1)).allowed,
      (await limiter.take('alpha', 1)).allowed,
      (await limiter.take('beta', 1)).allowed,
      (await limiter.take('beta', 1)).allowed,
    ];
    assertEquals(results, [true, false, true, false], 'verdicts');
  });
});

Deno.test('concurrent takes from one instance are counted exactly', async () => {
  await withTwoHandles(async (first) => {
    const warnings = collectWarnings();
    const limiter = createKvRateLimiter(first, { warn: warnings.warn });
    const admitted = await allowedCount(
      Promise.all(Array.from({ length: 20 }, () => limiter.take('burst', 5))),
    );
    assertEquals(admitted, 5, 'admitted');
    assertEquals(warnings.lines, [], 'warnings');
  });
});

Deno.test('concurrent takes from two instances collide, retry, and are counted exactly', async () => {
  await withTwoHandles(async (first, second) => {
    const a = watched(first);
    const b = watched(second);
    const warnings = collectWarnings();
    // Generous attempts: this test is about the retry being correct, not about giving up.
    const viaA = createKvRateLimiter(a.kv, { warn: warnings.warn, maxAttempts: 50 });
    const viaB = createKvRateLimiter(b.kv, { warn: warnings.warn, maxAttempts: 50 });
    let lostRaces = 0;
    for (let round = 0; round < 5; round++) {
      const key = `race-${round}`;
      const admitted = await allowedCount(
        Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? viaA : viaB).take(key, 5))),
      );
      assertEquals(admitted, 5, `admitted in round ${round}`);
      lostRaces = a.lostRaces() + b.lostRaces();
      if (lostRaces > 0) break;
    }
    if (lostRaces === 0) throw new Error('no operation lost a race: the retry path did not run');
    assertEquals(warnings.lines, [], 'warnings');
  });
});

Deno.test('a database that cannot be opened counts in memory, with one warning', async () => {
  const warnings = collectWarnings();
  let opens = 0;
  const limiter = createKvRateLimiter(
    () => {
      opens++;
      return Promise.reject(new Error('no KV database is assigned to this app'));
    },
    { warn: warnings.warn },
  );
  const results = [];
  for (let i = 0; i < 3; i++) results.push((await limiter.take('app', 2)).allowed);
  assertEquals(results, [true, true, false], 'verdicts');
  assertEquals(opens, 1, 'open attempts within a minute');
  assertEquals(warnings.lines.length, 1, 'warnings');
  const warning = JSON.parse(warnings.lines[0] ?? '{}');
  assertEquals(
    [warning.level, warning.store, warning.error],
    ['warn', 'deno_kv', 'Error: no KV database is assigned to this app'],
    'warning',
  );
});

Deno.test('a database that keeps conflicting counts in memory instead of failing', async () => {
  await withTwoHandles(async (first) => {
    const warnings = collectWarnings();
    const alwaysConflicting: RateLimitKv = {
      get: first.get.bind(first),
      atomic: () => {
        const operation = first.atomic();
        operation.commit = () => Promise.resolve({ ok: false });
        return operation;
      },
    };
    const limiter = createKvRateLimiter(alwaysConflicting, { warn: warnings.warn, maxAttempts: 3 });
    assertEquals((await limiter.take('app', 1)).allowed, true, 'first');
    assertEquals((await limiter.take('app', 1)).allowed, false, 'second');
    assertEquals(warnings.lines.length, 1, 'warnings');
  });
});

Deno.test('a corrupt stored value counts as no history', async () => {
  await withTwoHandles(async (first, second) => {
    const key = ['vertex-edge-gateway', 'rpm', 'app'];
    await first.set(key, { not: 'a window' });
    const limiter = createKvRateLimiter(second);
    assertEquals((await limiter.take('app', 2)).remaining, 1, 'remaining');
    const stored = await first.get(key);
    assertEquals(Array.isArray(stored.value), true, 'stored window');
  });
});

Deno.test('the database opens on first use, not when the limiter is built', async () => {
  await withTwoHandles(async (_first, _second, path) => {
    let opened: Deno.Kv | undefined;
    const limiter = createKvRateLimiter(async () => {
      opened = await Deno.openKv(path);
      return opened;
    });
    assertEquals(opened, undefined, 'opened before use');
    assertEquals((await limiter.take('lazy', 1)).allowed, true, 'first');
    assertEquals((await limiter.take('lazy', 1)).allowed, false, 'second');
    opened?.close();
  });
});

Deno.test('a slow database decides a burst in a few round trips, admitting exactly rpm', async () => {
  const kv = await Deno.openKv(':memory:');
  try {
    // 150 ms per read and per commit, like a write to a far primary region.
    let roundTrips = 0;
    const delay = () => new Promise((resolve) => setTimeout(resolve, 150));
    const slow: RateLimitKv = {
      get: async (key, options) => {
        roundTrips++;
        await delay();
        return kv.get(key, options);
      },
      atomic: () => {
        const operation = kv.atomic();
        const commit = operation.commit.bind(operation);
        operation.commit = async () => {
          await delay();
          return commit();
        };
        return operation;
      },
    };
    const warnings = collectWarnings();
    const limiter = createKvRateLimiter(slow, { warn: warnings.warn });
    const admitted = await allowedCount(
      Promise.all(Array.from({ length: 30 }, () => limiter.take('burst', 10))),
    );
    assertEquals(admitted, 10, 'admitted');
    // The first request alone, then the 29 that arrived meanwhile, together.
    assertEquals(roundTrips, 2, 'reads');
    assertEquals(warnings.lines, [], 'warnings');
  } finally {
    kv.close();
  }
});
