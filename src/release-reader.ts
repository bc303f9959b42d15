/**
 * Lets go of a reader whose read failed. On workerd a reader left locked to a fetch body that broke
 * off is never freed, and it keeps its whole request alive; cancelling it does not help (see
 * bench/README.md, session 7). workerd throws if a read is still pending, which no caller has at
 * that point: should one ever have, the request goes on failing as it was, not with a TypeError.
 */
export function releaseAfterFailure(reader: { releaseLock(): void }): void {
  try {
    reader.releaseLock();
  } catch {
    // A read still pending: the lock stays, and so may the memory, but the request is answered.
  }
}
