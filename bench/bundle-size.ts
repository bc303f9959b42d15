/**
 * CI check for the one deterministic benchmark target: the Worker bundle is at most 40 KiB gzip.
 * Builds it with `wrangler deploy --dry-run` (a few seconds, no network), prints the size and
 * exits 1 when it is over the limit.
 *
 *   npm run check:bundle
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLE_LIMIT_BYTES, buildBundle, bundleGzipBytes } from './bundle.ts';

const kib = (bytes: number) => `${(bytes / 1024).toFixed(2)} KiB`;

const outdir = mkdtempSync(join(tmpdir(), 'gateway-bundle-'));
try {
  const bundle = await buildBundle(outdir);
  const size = bundleGzipBytes(bundle);
  const ok = size <= BUNDLE_LIMIT_BYTES;
  console.log(
    `Worker bundle ${bundle.moduleName}: ${kib(bundle.rawBytes)} raw, ${kib(size)} gzip ` +
      `(zlib ${kib(bundle.gzipBytes)}, wrangler ${bundle.wranglerGzipBytes === null ? 'n/a' : kib(bundle.wranglerGzipBytes)}); ` +
      `limit ${kib(BUNDLE_LIMIT_BYTES)}: ${ok ? 'OK' : 'TOO LARGE'}`,
  );
  process.exitCode = ok ? 0 : 1;
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
