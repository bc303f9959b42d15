import { describe, expect, it } from 'vitest';
import { releaseAfterFailure } from '../../src/release-reader.ts';

describe('releaseAfterFailure', () => {
  it('unlocks the stream of a reader whose read failed', async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new TypeError('Network connection lost.'));
      },
    });
    const reader = stream.getReader();
    await expect(reader.read()).rejects.toThrow('Network connection lost.');
    releaseAfterFailure(reader);
    expect(stream.locked).toBe(false);
  });

  it("swallows workerd's refusal to release a reader with a read pending", () => {
    const refusing = {
      releaseLock() {
        throw new TypeError(
          'Cannot call releaseLock() on a reader with outstanding read promises.',
        );
      },
    };
    expect(() => releaseAfterFailure(refusing)).not.toThrow();
  });
});
