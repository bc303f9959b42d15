import { createServer } from 'node:net';

/**
 * A loopback port that was free a moment ago, for servers that cannot report the one they got.
 * Shared by the e2e suite and the benchmark; it imports nothing from vitest so the bench can use it.
 */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
