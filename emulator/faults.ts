import { DirectiveError, type Directives, parseDirectives } from './directives.ts';

/**
 * A behaviour forced onto the next request(s) of one kind, for traffic a test cannot annotate
 * (token exchanges, or chat requests built by a client the test does not control).
 * Chat faults accept every directive. Token faults use `status`, `message`, `body`,
 * `retryAfter`, `headersDelayMs` and `bodyStallMs`; without `status` they only delay or stall a
 * normal exchange.
 */
export interface Fault extends Directives {
  target: 'chat' | 'token';
  /** How many requests this fault applies to; default 1. */
  times?: number;
  /** Exact JSON body to answer with instead of Google's shape (needs `status`). */
  body?: unknown;
}

interface Entry {
  fault: Fault;
  remaining: number;
}

export class FaultQueue {
  #entries: Entry[] = [];

  add(...faults: Fault[]): void {
    for (const fault of faults) this.#entries.push({ fault, remaining: fault.times ?? 1 });
  }

  /** Removes and returns the first pending fault for `target`, oldest first. */
  take(target: Fault['target']): Fault | undefined {
    const index = this.#entries.findIndex((entry) => entry.fault.target === target);
    const entry = this.#entries[index];
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.#entries.splice(index, 1);
    return entry.fault;
  }

  list(): { fault: Fault; remaining: number }[] {
    return this.#entries.map((entry) => ({ ...entry }));
  }

  clear(): void {
    this.#entries = [];
  }
}

export function parseFault(value: unknown): Fault {
  const fields = parseDirectives(value, ['target', 'times', 'body']);
  if (fields.target !== 'chat' && fields.target !== 'token') {
    throw new DirectiveError('fault "target" must be "chat" or "token"');
  }
  if (
    fields.times !== undefined &&
    !(Number.isInteger(fields.times) && Number(fields.times) >= 1)
  ) {
    throw new DirectiveError('fault "times" must be a positive integer');
  }
  if (fields.body !== undefined && fields.status === undefined) {
    throw new DirectiveError('fault "body" needs a "status"');
  }
  return fields as unknown as Fault;
}
