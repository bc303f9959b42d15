/**
 * Lets go of a reader whose read failed. On workerd a reader left locked to a fetch body that broke
 * off while the answer streamed is never freed, and it keeps its whole request alive; cancelling
 * it does not help (bench/README.md, session 7). Bodies read before the answer starts were not
 * seen to leak, but are released the same way. workerd throws if a read is still pending, which
 * no caller has at that point: should one ever have, the request fails as it was going to.
 */
export function releaseAfterFailure(reader: { releaseLock(): void }): void {
  try {
    reader.releaseLock();
  } catch {
    // A read still pending: the lock stays, and so may the memory, but the request is answered.
  }
}
