/** What the benchmark ran on, for BENCHMARKS.md: numbers mean little without the machine. */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, runCommand } from './processes.ts';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  versions: Record<string, string>;
}

function firstMatch(file: string, pattern: RegExp): string | null {
  try {
    return pattern.exec(readFileSync(file, 'utf8'))?.[1]?.trim() ?? null;
  } catch {
    return null;
  }
}

async function versionOf(command: string, args: string[]): Promise<string> {
  try {
    const { output } = await runCommand(command, args);
    return output.split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function packageVersion(name: string): string {
  try {
    const file = join(ROOT, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function describeMachine(): Promise<Machine> {
  const distribution = firstMatch('/etc/os-release', /^PRETTY_NAME="?([^"\n]+)"?$/m) ?? 'Linux';
  return {
    cpu: firstMatch('/proc/cpuinfo', /^model name\s*:\s*(.+)$/m) ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: totalmem() / 1024 ** 3,
    os: `${distribution}, kernel ${release()}`,
    versions: {
      Node: process.version,
      Deno: await versionOf(join(BIN, 'deno'), ['--version']),
      workerd: await versionOf(join(BIN, 'workerd'), ['--version']),
      wrangler: packageVersion('wrangler'),
      '@portkey-ai/gateway': packageVersion('@portkey-ai/gateway'),
      autocannon: packageVersion('autocannon'),
    },
  };
}

/** The 1-minute load average: other work on the machine shows up here. */
export const loadAverage = (): number => loadavg()[0] ?? 0;
