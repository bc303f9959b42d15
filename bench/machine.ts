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

/** The machine's CPU time so far, in clock ticks: all of it, and what the host took back. */
export interface CpuTicks {
  total: number;
  steal: number;
}

/** From /proc/stat's first line; null where there is none (not Linux). */
export function cpuTicks(): CpuTicks | null {
  const line = firstMatch('/proc/stat', /^cpu\s+([\d ]+)/m);
  if (!line) return null;
  // user nice system idle iowait irq softirq steal guest guest_nice; guests are inside user.
  const fields = line.split(/\s+/).map(Number).slice(0, 8);
  return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
}

/**
 * The share of the machine's CPU time the host took back between two readings (a virtual
 * machine's steal time). Time a process loses this way still counts as its own CPU time in
 * /proc, and every leg runs slower, so a run with much of it reads worse throughout.
 */
export function stealShare(before: CpuTicks | null, after: CpuTicks | null): number | null {
  if (!before || !after || after.total <= before.total) return null;
  return (after.steal - before.steal) / (after.total - before.total);
}
