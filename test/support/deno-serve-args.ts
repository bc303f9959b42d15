import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * The `deno serve` arguments of `npm run serve:deno` (after `deno`), read from package.json so
 * the flags cannot drift, bound to 127.0.0.1 and `port`, serving `entry`. For starting Deno
 * directly, where the process must be Deno itself or needs flags of its own added. Shared by the
 * e2e suite and the benchmark; it imports nothing from vitest.
 */
export function denoServeArgs(entry: string, port: number): string[] {
  const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const script = packageJson.scripts['serve:deno'] ?? '';
  const expanded = script.replace(/\$\{(\w+):-([^}]*)\}/g, (_, name: string, fallback: string) =>
    name === 'HOST' ? '127.0.0.1' : name === 'PORT' ? String(port) : fallback,
  );
  const words = expanded.split(/\s+/).filter(Boolean);
  if (words[0] !== 'deno' || words[1] !== 'serve' || !words.at(-1)?.endsWith('.ts')) {
    throw new Error(`cannot derive a deno serve command from "serve:deno": ${script}`);
  }
  return [...words.slice(1, -1), entry];
}
