/**
 * Child processes for the benchmark: spawning, readiness, RSS, and cleanup. Every child runs in
 * its own process group, so stopping it also ends anything it forked, and every group still alive
 * when the benchmark exits (normally, on an exception, or on Ctrl-C) is killed: no orphan
 * workerd, deno or node processes stay behind to skew the next run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
export const BIN = resolve(ROOT, 'node_modules/.bin');

export interface Child {
  readonly pid: number;
  /** Everything the process printed so far (stdout and stderr), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Ready when this appears in the output; its match is returned. */
  readyLine?: RegExp;
  /** Ready when this loopback port accepts a TCP connection (for servers that print nothing). */
  readyPort?: number;
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];
let cleanupInstalled = false;

/** Runs `cleanup` (synchronous) when the benchmark ends, however it ends. */
export function onCleanup(cleanup: () => void): void {
  cleanups.push(cleanup);
}

/** Kills every child group still alive. Synchronous, so it can run from an 'exit' handler. */
export function killAll(): void {
  for (const child of live) signalGroup(child, 'SIGKILL');
  live.clear();
  for (const cleanup of cleanups.splice(0)) cleanup();
}

/** Makes sure no child outlives the benchmark, whatever ends it. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Runs a command to completion in its own group (killed on exit like the rest); returns its output. */
export async function runCommand(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
  cwd: string = ROOT,
): Promise<{ code: number | null; output: string }> {
  installCleanup();
  const proc = spawn(command, args, {
    cwd,
    env: { ...baseEnv(), ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let output = '';
  proc.stdout?.on('data', (data: Buffer) => {
    output += data.toString();
  });
  proc.stderr?.on('data', (data: Buffer) => {
    output += data.toString();
  });
  const code = await new Promise<number | null>((done, fail) => {
    proc.once('error', fail);
    proc.once('close', done);
  }).finally(() => live.delete(proc));
  return { code, output };
}

/** Variables of the machine that must not leak into a system under test. */
const PRIVATE_VARIABLE = /^(GOOGLE_|GATEWAY_|VERTEX_|ALLOW_TOKEN_|FLOOR_|NODE_OPTIONS$)/;

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !PRIVATE_VARIABLE.test(name)) env[name] = value;
  }
  // node_modules/.bin first, as npm scripts do: wrangler needs the project's Node 22, not the
  // system Node, even when this file was started without npm.
  const path = [BIN, dirname(process.execPath), env.PATH].filter(Boolean).join(delimiter);
  return { ...env, PATH: path, NO_COLOR: '1', WRANGLER_SEND_METRICS: 'false' };
}

export async function spawnChild(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<{ child: Child; match: RegExpExecArray | null }> {
  installCleanup();
  // The child writes to a file, not to a pipe this process drains: a server that logs every
  // request would otherwise make the load generator's own process read thousands of lines a
  // second, and measure that too. On a real platform, logs leave the request path the same way.
  const logPath = join(mkdtempSync(join(tmpdir(), 'bench-child-')), 'output.log');
  // stop() removes it; this covers a child killed on the way out instead.
  onCleanup(() => rmSync(dirname(logPath), { recursive: true, force: true }));
  const logFd = openSync(logPath, 'a');
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...baseEnv(), ...options.env },
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  live.add(proc);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((done) => {
    proc.once('exit', (code) => {
      exitCode = code;
      live.delete(proc);
      done();
    });
  });
  /** The last 64 KiB the child printed. */
  const output = () => {
    const size = statSync(logPath).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    const fd = openSync(logPath, 'r');
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buffer.toString();
  };

  const child: Child = {
    get pid() {
      return proc.pid ?? -1;
    },
    output,
    async stop() {
      if (exitCode === undefined) {
        signalGroup(proc, 'SIGTERM');
        const forced = setTimeout(() => signalGroup(proc, 'SIGKILL'), 3_000);
        await exited;
        clearTimeout(forced);
      }
      rmSync(dirname(logPath), { recursive: true, force: true });
    },
  };

  if (!options.readyLine && options.readyPort === undefined) return { child, match: null };
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const describe = () => `${command} ${args.join(' ')}`;
  try {
    while (Date.now() < deadline) {
      if (exitCode !== undefined) {
        throw new Error(`${describe()} exited (${exitCode}) before it was ready:\n${output()}`);
      }
      const match = options.readyLine?.exec(output()) ?? null;
      if (match) return { child, match };
      if (options.readyPort !== undefined && (await accepts(options.readyPort))) {
        return { child, match: null };
      }
      // Short polls: the cold-path figures include the time to notice readiness.
      await sleep(2);
    }
    throw new Error(`${describe()} was not ready within ${timeoutMs} ms:\n${output()}`);
  } catch (error) {
    await child.stop();
    throw error;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

export { freePort } from '../test/support/free-port.ts';

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** A process and all its descendants, from the parent links in /proc. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentPid(Number(entry));
    if (parent === null) continue;
    const list = children.get(parent) ?? [];
    list.push(Number(entry));
    children.set(parent, list);
  }
  const tree: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    const current = pending.pop() as number;
    tree.push(current);
    pending.push(...(children.get(current) ?? []));
  }
  return tree;
}

/**
 * Resident memory of a process and all its descendants, in bytes (VmRSS from /proc). Summing the
 * tree keeps the figure honest for a runtime that forks helpers.
 */
export function treeRssBytes(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) total += rssBytes(member);
  return total;
}

/**
 * CPU time used so far by every thread of a process tree, in ns. It comes from each thread's
 * schedstat, which the scheduler keeps exactly; /proc/PID/stat's utime and stime are sampled at
 * the 100 Hz tick, too coarse for a few seconds of load.
 */
export function treeCpuNs(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) {
    let threads: string[];
    try {
      threads = readdirSync(`/proc/${member}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const thread of threads) {
      try {
        const schedstat = readFileSync(`/proc/${member}/task/${thread}/schedstat`, 'utf8');
        total += Number(schedstat.split(' ')[0]);
      } catch {
        // the thread ended between the listing and the read
      }
    }
  }
  return total;
}

function parentPid(pid: number): number | null {
  try {
    // The command name (field 2) may contain spaces and parentheses: parse after its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return null;
  }
}

function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
    return kib ? Number(kib) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a process tree's RSS every 200 ms for `ms`; returns the largest. */
export async function peakTreeRssBytes(pid: number, ms: number): Promise<number> {
  let peak = 0;
  const end = performance.now() + ms;
  do {
    peak = Math.max(peak, treeRssBytes(pid));
    await sleep(200);
  } while (performance.now() < end);
  return peak;
}
