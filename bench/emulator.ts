/**
 * The Vertex emulator as its own Node process (not in the benchmark's process, where it would
 * share an event loop with the load generator), plus the admin calls the benchmark needs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Directives } from '../emulator/directives.ts';
import type { EmulatorStats } from '../emulator/state.ts';
import { BIN, spawnChild } from './processes.ts';

/** The project and location every leg targets; the emulator accepts any well-formed path. */
export const PROJECT = 'bench-project';
export const LOCATION = 'us-central1';
const VERTEX_PREFIX = `/v1/projects/${PROJECT}/locations/${LOCATION}/endpoints/openapi`;

export interface EmulatorProcess {
  readonly pid: number;
  readonly url: string;
  /** Vertex's OpenAI-compatible base, up to (not including) `/chat/completions`. */
  readonly openaiBaseUrl: string;
  readonly chatUrl: string;
  /** The generated service-account key file's JSON, base64-encoded (as the gateway accepts it). */
  readonly serviceAccountKeyBase64: string;
  /** A valid access token for the legs that hold a fixed bearer (direct, floors, Portkey). */
  readonly accessToken: string;
  /** Every chat request the emulator sees until `clearFaults()` gets these directives. */
  queueDirectives(directives: Directives, times: number): Promise<void>;
  clearFaults(): Promise<void>;
  stats(): Promise<EmulatorStats>;
  stop(): Promise<void>;
}

export async function startEmulator(workdir: string): Promise<EmulatorProcess> {
  const keyFile = join(workdir, 'service-account.json');
  const { child, match } = await spawnChild(
    join(BIN, 'node'),
    ['emulator/main.ts', '--port', '0', '--write-key', keyFile],
    { readyLine: /listening on (http:\/\/\S+)/ },
  );
  const url = match?.[1] as string;

  async function admin<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
    const response = await fetch(`${url}/__emulator/${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`emulator ${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  // The gateway's self-signed cold path needs Vertex (here, the emulator) to take its JWT.
  await admin('config', 'POST', { acceptSelfSignedJwt: true });
  // Long enough for any run: no leg with a fixed bearer may see it expire mid-benchmark.
  const { access_token } = await admin<{ access_token: string }>('access-tokens', 'POST', {
    ttlSeconds: 6 * 3600,
  });
  const openaiBaseUrl = `${url}${VERTEX_PREFIX}`;
  return {
    pid: child.pid,
    url,
    openaiBaseUrl,
    chatUrl: `${openaiBaseUrl}/chat/completions`,
    serviceAccountKeyBase64: readFileSync(keyFile).toString('base64'),
    accessToken: access_token,
    async queueDirectives(directives, times) {
      // A fault without a status only changes how the answer is produced. Faults rather than the
      // body's own `emulator` field, because Portkey drops body fields it does not know.
      await admin('faults', 'POST', { target: 'chat', times, ...directives });
    },
    async clearFaults() {
      await admin('faults', 'DELETE');
    },
    stats: () => admin<EmulatorStats>('stats'),
    stop: () => child.stop(),
  };
}
