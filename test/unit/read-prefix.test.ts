import { describe, expect, it } from 'vitest';
import { readPrefix } from '../../src/read-prefix.ts';

const encoder = new TextEncoder();

describe('readPrefix', () => {
  it('reads a body up to the limit and cancels the rest', async () => {
    let cancelled = false;
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(encoder.encode('0123456789'));
      },
      cancel() {
        cancelled = true;
      },
    });
    expect(await readPrefix(new Response(body), 25)).toBe('0123456789012345678901234');
    expect(pulls).toBeLessThan(6);
    expect(cancelled).toBe(true);
  });

  it('gives what arrived from a body that broke off, and lets go of it', async () => {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new TypeError('Network connection lost.'));
        sent = true;
        controller.enqueue(encoder.encode('{"error":'));
      },
    });
    const response = new Response(body);
    expect(await readPrefix(response, 1000)).toBe('{"error":');
    // Released, not left locked: on workerd a held reader keeps its request alive.
    expect(response.body?.locked).toBe(false);
  });
});
