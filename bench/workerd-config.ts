/**
 * workerd's capnp configuration for one Worker, written next to its module so the `embed` path
 * is relative to the config file (workerd resolves it that way). The compatibility date, flags
 * and [vars] come from wrangler.toml, so `workerd serve` runs the bundle the way Cloudflare
 * would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

export interface WranglerSettings {
  compatibilityDate: string;
  compatibilityFlags: string[];
  /** Plain string [vars] only; the gateway has no others. */
  vars: Record<string, string>;
}

/**
 * A deliberately small reader for the few wrangler.toml keys the benchmark needs (no TOML
 * dependency): top-level `compatibility_date`, `compatibility_flags` and `[vars]` strings. The
 * Durable Object binding is left out: without it the gateway counts rate limits per isolate.
 */
export function readWranglerToml(path = join(ROOT, 'wrangler.toml')): WranglerSettings {
  const lines = readFileSync(path, 'utf8').split('\n');
  let section = '';
  let compatibilityDate = '';
  let compatibilityFlags: string[] = [];
  const vars: Record<string, string> = {};
  for (const raw of lines) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    if (line === '' || line.startsWith('#')) continue;
    // `[[table]]` arrays (Durable Object bindings, migrations) are sections too, never [vars].
    const header = /^\[\[?([^\]]+)\]\]?$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    const entry = /^([A-Za-z0-9_]+)\s*=\s*(.+)$/.exec(line);
    if (!entry) continue;
    const [, key = '', value = ''] = entry;
    if (section === '' && key === 'compatibility_date') compatibilityDate = JSON.parse(value);
    if (section === '' && key === 'compatibility_flags') compatibilityFlags = JSON.parse(value);
    if (section === 'vars' && value.startsWith('"')) vars[key] = JSON.parse(value);
  }
  if (!compatibilityDate) throw new Error(`${path} has no compatibility_date`);
  return { compatibilityDate, compatibilityFlags, vars };
}

export interface WorkerdServiceOptions {
  /** The module's file name, in the same directory as the config. */
  moduleName: string;
  port: number;
  bindings: Record<string, string>;
  settings: WranglerSettings;
}

/** capnp text literals take C escapes; JSON's string escaping is a subset of them for ASCII. */
function capnpText(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error('capnp bindings here must be printable ASCII');
  return JSON.stringify(value);
}

export function workerdConfig(options: WorkerdServiceOptions): string {
  const bindings = Object.entries(options.bindings)
    .map(([name, value]) => `    (name = ${capnpText(name)}, text = ${capnpText(value)}),`)
    .join('\n');
  const flags = options.settings.compatibilityFlags.map(capnpText).join(', ');
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # Lets the Worker reach the emulator on 127.0.0.1 (the default outbound allows public only).
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:${options.port}", http = (), service = "main"),
  ],
);

const worker :Workerd.Worker = (
  modules = [(name = ${capnpText(options.moduleName)}, esModule = embed ${capnpText(options.moduleName)})],
  compatibilityDate = ${capnpText(options.settings.compatibilityDate)},
  compatibilityFlags = [${flags}],
  bindings = [
${bindings}
  ],
  globalOutbound = "internet",
);
`;
}
