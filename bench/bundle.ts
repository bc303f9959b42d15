/**
 * The Workers bundle exactly as `wrangler deploy` would upload it: `wrangler deploy --dry-run
 * --outdir DIR` bundles and minifies per wrangler.toml, writes the module and stops before any
 * network call. Both the workerd legs and the size check use this one build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BIN, runCommand } from './processes.ts';

/** The limit for the Worker bundle, gzip-compressed. */
export const BUNDLE_LIMIT_BYTES = 40 * 1024;

export interface Bundle {
  /** The bundled module, inside `outdir`. */
  file: string;
  /** Its file name, as the capnp config embeds it. */
  moduleName: string;
  rawBytes: number;
  /** zlib's default level, as `gzip` without flags. */
  gzipBytes: number;
  /** Wrangler's own "gzip: N KiB" figure in bytes (rounded as it prints it), if it printed one. */
  wranglerGzipBytes: number | null;
}

/**
 * `minify: false` overrides wrangler.toml, for CPU profiles with readable function names.
 * `checkout` bundles another checkout of the gateway (bench:compare) with its own wrangler.toml.
 */
export async function buildBundle(
  outdir: string,
  options: { minify?: boolean; checkout?: string } = {},
): Promise<Bundle> {
  const args = ['deploy', '--dry-run', '--outdir', outdir];
  if (options.minify === false) args.push('--no-minify');
  const { code, output } = await runCommand(join(BIN, 'wrangler'), args, {}, options.checkout);
  if (code !== 0) throw new Error(`wrangler deploy --dry-run failed (${code}):\n${output}`);
  const moduleName = readdirSync(outdir).find((name) => name.endsWith('.js'));
  if (!moduleName) throw new Error(`wrangler wrote no .js module to ${outdir}:\n${output}`);
  const file = join(outdir, moduleName);
  const source = readFileSync(file);
  const wranglerGzip = /gzip:\s*([\d.]+)\s*KiB/.exec(output)?.[1];
  return {
    file,
    moduleName,
    rawBytes: source.length,
    gzipBytes: gzipSync(source).length,
    wranglerGzipBytes: wranglerGzip ? Math.round(Number(wranglerGzip) * 1024) : null,
  };
}

/** The larger of the two gzip figures: the check must not pass on the kinder one. */
export const bundleGzipBytes = (bundle: Bundle): number =>
  Math.max(bundle.gzipBytes, bundle.wranglerGzipBytes ?? 0);
