/**
 * A minimal Chrome DevTools Protocol client, enough to take a V8 CPU profile from inside a
 * running workerd (`--inspector-addr`) or Deno (`--inspect`) process, so the profile shows the
 * runtime's real request path rather than a Node stand-in.
 */
import { sleep } from './processes.ts';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds between consecutive samples. */
  timeDeltas: number[];
}

export class Inspector {
  readonly #socket: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (!waiter || message.id === undefined) return;
      this.#pending.delete(message.id);
      if (message.error) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result);
    });
  }

  /** Connects to the first target the inspector lists (the one Worker, or Deno's main isolate). */
  static async connect(port: number, timeoutMs = 10_000): Promise<Inspector> {
    const deadline = performance.now() + timeoutMs;
    let url: string | undefined;
    while (!url) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/json/list`);
        const targets = (await response.json()) as { webSocketDebuggerUrl?: string }[];
        url = targets.find((target) => target.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
      } catch {
        // Not listening yet.
      }
      if (!url) {
        if (performance.now() > deadline) throw new Error(`no inspector target on port ${port}`);
        await sleep(50);
      }
    }
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), {
        once: true,
      });
    });
    return new Inspector(socket);
  }

  /** Fails after `timeoutMs`: a runtime may silently ignore a method it does not implement. */
  send<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`inspector: no answer to ${method} in ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = { resolve: (v: unknown) => resolve(v as T), reject };
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          settle.resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          settle.reject(e);
        },
      });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#socket.close();
  }
}
