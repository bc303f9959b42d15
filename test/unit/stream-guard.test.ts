import { describe, expect, it } from 'vitest';
import {
  guardEventStream,
  HAS_ERROR,
  HAS_USAGE,
  markersIn,
} from '../../src/vertex/stream-guard.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('markersIn', () => {
  it('finds each key wherever it is, the first and last bytes included', () => {
    expect(markersIn(bytes('"error"'))).toBe(HAS_ERROR);
    expect(markersIn(bytes('"usage"'))).toBe(HAS_USAGE);
    expect(markersIn(bytes('data: {"x":1,"usage"'))).toBe(HAS_USAGE);
    expect(markersIn(bytes('data: [{"error":{"code":429}}]\n\n'))).toBe(HAS_ERROR);
  });

  it('reports both when both occur, in either order', () => {
    const both = HAS_ERROR | HAS_USAGE;
    expect(markersIn(bytes('data: {"usage":{}}\n\ndata: {"error":{}}\n\n'))).toBe(both);
    expect(markersIn(bytes('data: {"error":{}}\n\ndata: {"usage":{}}\n\n'))).toBe(both);
  });

  it('ignores near misses: cut off, longer keys, and escaped quotes inside a string', () => {
    expect(markersIn(bytes('data: {"erro'))).toBe(0);
    expect(markersIn(bytes('data: {"error'))).toBe(0);
    expect(markersIn(bytes('{"errors":1,"usages":2,"":3,"u":"e"}'))).toBe(0);
    expect(markersIn(bytes(JSON.stringify({ content: 'say "error" and "usage"' })))).toBe(0);
    expect(markersIn(bytes(''))).toBe(0);
  });
});

describe('guardEventStream on a broken upstream', () => {
  it.each(['bytes', 'default'] as const)(
    'releases its hold on a %s upstream body that broke off, after passing on the error',
    async (kind) => {
      const event = bytes('data: {"choices":[]}\n\n');
      let sent = false;
      const source = {
        pull(controller: ReadableStreamController<Uint8Array>) {
          if (sent) return controller.error(new TypeError('Network connection lost.'));
          sent = true;
          controller.enqueue(event.slice());
        },
      };
      const upstream =
        kind === 'bytes'
          ? new ReadableStream({ type: 'bytes', ...source } as UnderlyingByteSource)
          : new ReadableStream<Uint8Array>(source);
      const text = await new Response(guardEventStream(upstream, { idleTimeoutMs: 5000 })).text();
      expect(text).toContain('upstream_stream_interrupted');
      // workerd frees a broken fetch body only once no reader holds it (stream-guard.ts).
      expect(upstream.locked).toBe(false);
    },
  );
});
