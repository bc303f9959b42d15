import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultAnswer } from '../../emulator/completion.ts';
import { ROOT } from './processes.ts';

/**
 * Runs the client examples in examples/ as a reader would: as their own processes, configured
 * only through GATEWAY_URL and GATEWAY_API_KEY.
 */

export const EXAMPLES_DIR = join(ROOT, 'examples');

export interface ExampleRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** When each read of stdout arrived (ms since the start), to tell a stream from a burst. */
  readTimes: number[];
}

/**
 * How many times output arrived after a pause of at least `gapMs`, counting the first: a client
 * that prints a paced stream as it comes scores one per chunk, one that got it buffered scores 1.
 */
export function arrivals(run: ExampleRun, gapMs: number): number {
  return run.readTimes.filter((t, i) => i === 0 || t - (run.readTimes[i - 1] as number) >= gapMs)
    .length;
}

// The machine's own gateway settings must not leak into an example: each test says what it uses.
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !/^(GATEWAY_|GOOGLE_|VERTEX_)/.test(entry[0]),
    ),
  );
}

export function runExample(
  file: string,
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ExampleRun> {
  const path = join(EXAMPLES_DIR, file);
  // Node for the JavaScript examples, the way a reader runs them: `node examples/x.mjs`.
  const [command, args] = file.endsWith('.sh') ? ['sh', [path]] : [process.execPath, [path]];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...cleanEnv(), NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = performance.now();
  const run: ExampleRun = { code: null, stdout: '', stderr: '', readTimes: [] };
  child.stdout.on('data', (data: Buffer) => {
    run.stdout += data.toString();
    run.readTimes.push(performance.now() - started);
  });
  child.stderr.on('data', (data: Buffer) => {
    run.stderr += data.toString();
  });
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${file} did not finish in ${timeoutMs} ms:\n${run.stdout}\n${run.stderr}`));
    }, timeoutMs);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      run.code = code;
      done(run);
    });
  });
}

/** What the emulator answers a one-message conversation, once the gateway has named the model. */
export function expectedAnswer(prompt: string, model = 'google/gemini-2.5-flash'): string {
  return defaultAnswer({ model, messages: [{ role: 'user', content: prompt }] });
}

/** The text of every fenced code block in a Markdown document, each ending with a newline. */
export function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```[\w-]*\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

export const readme = () => readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The content deltas of an SSE body, in order; `[DONE]` and the usage chunk carry none. */
export function sseContent(body: string): string[] {
  return body
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
    .map((line) => JSON.parse(line.slice('data: '.length)).choices?.[0]?.delta?.content ?? '')
    .filter((content: string) => content !== '');
}
