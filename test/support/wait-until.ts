/**
 * Polls `condition` until it holds, for up to `timeoutMs` of real time, and throws if it never
 * does. It polls with setImmediate and reads performance.now, which the fake timers of the unit
 * tests leave alone, so it also waits out real work (RSA signing, say) while faked timers stand
 * still.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
