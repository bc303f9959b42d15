import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_PREFIX, handleAdminRequest } from './admin-endpoint.ts';
import { CHAT_PATH, handleChatRequest } from './chat-endpoint.ts';
import type { FaultQueue } from './faults.ts';
import { googleError } from './google-errors.ts';
import { BodyTooLargeError, sendJson } from './http-io.ts';
import { generateServiceAccountKey, type ServiceAccountKey } from './service-account.ts';
import {
  type EmulatorConfig,
  EmulatorState,
  type EmulatorStats,
  type RecordedChatRequest,
} from './state.ts';
import { handleTokenRequest } from './token-endpoint.ts';

export interface EmulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  tokenTtlSeconds?: number;
  /** Pause between stream chunks unless a request says otherwise; 0 by default. */
  chunkDelayMs?: number;
  /** Default project for createServiceAccount(). */
  projectId?: string;
  /** Base clock in epoch milliseconds; config.clockOffsetMs is added to it. */
  now?: () => number;
}

export interface Emulator {
  readonly url: string;
  readonly port: number;
  /** `${url}/token`: the token_uri of every key this emulator creates, and the required `aud`. */
  readonly tokenUri: string;
  /** Generates a key, registers it, and returns Google's key JSON with token_uri = tokenUri. */
  createServiceAccount(options?: { projectId?: string; clientEmail?: string }): ServiceAccountKey;
  /** Revokes a key by private_key_id; later assertions signed with it fail like a deleted key. */
  deleteServiceAccount(privateKeyId: string): boolean;
  /** A valid access token, as if the caller had fetched it from Google themselves. */
  issueAccessToken(ttlSeconds?: number): string;
  /** Marks every issued token expired; returns how many. */
  expireTokens(): number;
  /** Moves the emulator's clock (JWT checks and token expiry) forward by `seconds`. */
  advanceClock(seconds: number): void;
  configure(patch: Partial<EmulatorConfig>): EmulatorConfig;
  readonly config: Readonly<EmulatorConfig>;
  readonly stats: Readonly<EmulatorStats>;
  readonly requests: readonly RecordedChatRequest[];
  readonly faults: FaultQueue;
  /** Clears requests, stats, faults and config; keeps keys and issued tokens. */
  reset(): void;
  close(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const state = new EmulatorState(
    {
      tokenTtlSeconds: options.tokenTtlSeconds ?? 3599,
      acceptSelfSignedJwt: false,
      clockOffsetMs: 0,
      chunkDelayMs: options.chunkDelayMs ?? 0,
    },
    options.now,
  );
  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => failed(res, error));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const tokenUri = `${url}/token`;

  const emulator: Emulator = {
    url,
    port,
    tokenUri,
    createServiceAccount(accountOptions = {}) {
      const generated = generateServiceAccountKey({
        tokenUri,
        projectId: accountOptions.projectId ?? options.projectId,
        clientEmail: accountOptions.clientEmail,
      });
      state.registerKey({ key: generated.key, publicKey: generated.publicKey });
      return generated.key;
    },
    deleteServiceAccount: (privateKeyId) => state.deleteKey(privateKeyId),
    issueAccessToken: (ttlSeconds) => state.issueToken(ttlSeconds),
    expireTokens: () => state.expireAllTokens(),
    advanceClock(seconds) {
      state.config.clockOffsetMs += seconds * 1000;
    },
    configure(patch) {
      for (const [name, value] of Object.entries(patch)) {
        if (value !== undefined) Object.assign(state.config, { [name]: value });
      }
      return { ...state.config };
    },
    get config() {
      return { ...state.config };
    },
    get stats() {
      return { ...state.stats };
    },
    get requests() {
      return state.requests;
    },
    faults: state.faults,
    reset: () => state.reset(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets and open streams would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', url);
    if (pathname === '/token') return handleTokenRequest(req, res, state, tokenUri);
    if (pathname.startsWith(ADMIN_PREFIX)) return handleAdminRequest(req, res, emulator, pathname);
    const chat = CHAT_PATH.exec(pathname);
    if (chat && req.method === 'POST') {
      const [, version = '', project = '', location = '', endpoint = ''] = chat;
      return handleChatRequest(req, res, state, { version, project, location, endpoint });
    }
    req.resume();
    sendJson(
      res,
      404,
      googleError(404, `The requested URL ${pathname} was not found on this server.`),
    );
  }

  return emulator;
}

function failed(res: ServerResponse, error: unknown): void {
  // The client left mid-upload (or mid-response): nobody is listening for an answer.
  if (res.headersSent || res.destroyed || res.req.destroyed) {
    res.destroy();
    return;
  }
  if (error instanceof BodyTooLargeError) {
    sendJson(
      res,
      400,
      googleError(400, `Request payload size exceeds the limit: ${error.message}`),
    );
    return;
  }
  // A bug in the emulator must be loud in test output, not look like a Google outage.
  console.error('vertex-emulator: internal error', error);
  sendJson(res, 500, {
    error: { code: 500, message: `emulator bug: ${String(error)}`, status: 'INTERNAL' },
  });
}
