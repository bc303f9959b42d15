import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { FaultQueue } from './faults.ts';
import type { ServiceAccountKey } from './service-account.ts';

export interface EmulatorConfig {
  /** `expires_in` of newly issued access tokens. */
  tokenTtlSeconds: number;
  /**
   * Accept a JWT the service account signed itself as the chat bearer (Google AIP-4111).
   * Off by default: whether chat/completions accepts it is unconfirmed, so the safe
   * assumption for the gateway is that it does not.
   */
  acceptSelfSignedJwt: boolean;
  /** Added to the base clock; lets tests expire tokens or simulate clock skew. */
  clockOffsetMs: number;
  /** Pause between stream chunks when a request sets no `chunkDelayMs`; the demo paces by it. */
  chunkDelayMs: number;
}

export interface EmulatorStats {
  tokenExchanges: number;
  tokenExchangeFailures: number;
  chatRequests: number;
  /** Chat requests answered with an HTTP error status. */
  chatErrors: number;
  streamsStarted: number;
  openStreams: number;
  completedStreams: number;
  /** Streams the client left before the emulator finished them. */
  cancelledStreams: number;
  /** Streams the emulator cut on purpose (`abortAfterChunks`). */
  abortedStreams: number;
  /** Chat requests (streamed or not) whose client disconnected before the response ended. */
  clientDisconnects: number;
  faultsApplied: number;
}

export interface RecordedChatRequest {
  seq: number;
  method: string;
  /** Path with query string, exactly as received. */
  path: string;
  params: { version: string; project: string; location: string; endpoint: string };
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  bodyText: string;
  /** Parsed body, or undefined when the body was not JSON. */
  body: unknown;
  receivedAt: number;
  /** HTTP status the emulator answered with; undefined until headers are sent. */
  status?: number;
}

export interface RegisteredKey {
  key: ServiceAccountKey;
  publicKey: KeyObject;
}

interface IssuedToken {
  expiresAt: number;
  clientEmail?: string;
}

const zeroStats = (openStreams = 0): EmulatorStats => ({
  tokenExchanges: 0,
  tokenExchangeFailures: 0,
  chatRequests: 0,
  chatErrors: 0,
  streamsStarted: 0,
  openStreams,
  completedStreams: 0,
  cancelledStreams: 0,
  abortedStreams: 0,
  clientDisconnects: 0,
  faultsApplied: 0,
});

const MAX_RECORDED_REQUESTS = 10_000;
// And at most this much body text among them (the newest request is always kept): 10,000 bodies
// of 20 MB inline images would otherwise be 200 GB.
const MAX_RECORDED_BODY_CHARS = 64 * 1024 * 1024;

export type TokenStatus = 'valid' | 'expired' | 'unknown';

/** Everything the emulator remembers; no HTTP here, so the in-process API and admin API share it. */
export class EmulatorState {
  readonly keys = new Map<string, RegisteredKey>();
  /** Every account that ever had a key: at Google, deleting a key leaves its account. */
  readonly #accounts = new Set<string>();
  readonly faults = new FaultQueue();
  requests: RecordedChatRequest[] = [];
  stats: EmulatorStats = zeroStats();
  config: EmulatorConfig;
  readonly #initialConfig: EmulatorConfig;
  readonly #tokens = new Map<string, IssuedToken>();
  readonly #baseClock: () => number;
  #seq = 0;
  #recordedChars = 0;

  constructor(config: EmulatorConfig, clock: () => number = Date.now) {
    this.#initialConfig = { ...config };
    this.config = { ...config };
    this.#baseClock = clock;
  }

  /** Milliseconds since the epoch, as the emulator sees it. */
  now(): number {
    return this.#baseClock() + this.config.clockOffsetMs;
  }

  registerKey(registered: RegisteredKey): void {
    this.keys.set(registered.key.private_key_id, registered);
    this.#accounts.add(registered.key.client_email);
  }

  deleteKey(privateKeyId: string): boolean {
    return this.keys.delete(privateKeyId);
  }

  hasAccount(clientEmail: string): boolean {
    return this.#accounts.has(clientEmail);
  }

  issueToken(ttlSeconds = this.config.tokenTtlSeconds, clientEmail?: string): string {
    // Real tokens start with "ya29."; gateways sometimes sniff that prefix.
    const token = `ya29.emu.${randomBytes(32).toString('base64url')}`;
    this.#tokens.set(token, { expiresAt: this.now() + ttlSeconds * 1000, clientEmail });
    return token;
  }

  tokenStatus(token: string): TokenStatus {
    const issued = this.#tokens.get(token);
    if (!issued) return 'unknown';
    return issued.expiresAt > this.now() ? 'valid' : 'expired';
  }

  /** Expired tokens stay known, so they keep answering ACCESS_TOKEN_EXPIRED like Google. */
  expireAllTokens(): number {
    const past = this.now() - 1;
    for (const issued of this.#tokens.values()) issued.expiresAt = past;
    return this.#tokens.size;
  }

  record(request: Omit<RecordedChatRequest, 'seq' | 'receivedAt'>): RecordedChatRequest {
    const recorded = { seq: ++this.#seq, receivedAt: this.now(), ...request };
    this.requests.push(recorded);
    this.#recordedChars += recorded.bodyText.length;
    // Bounded so long benchmark runs do not grow without limit; tests see far fewer.
    while (
      this.requests.length > MAX_RECORDED_REQUESTS ||
      (this.#recordedChars > MAX_RECORDED_BODY_CHARS && this.requests.length > 1)
    ) {
      this.#recordedChars -= this.requests.shift()?.bodyText.length ?? 0;
    }
    return recorded;
  }

  /**
   * Forgets traffic, stats, faults and config changes, but keeps keys and issued tokens:
   * a gateway started once per suite holds a key file and a cached token across tests.
   */
  reset(): void {
    this.requests = [];
    this.#recordedChars = 0;
    this.stats = zeroStats(this.stats.openStreams);
    this.faults.clear();
    this.config = { ...this.#initialConfig };
  }
}
