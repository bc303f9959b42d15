import type { IncomingMessage, ServerResponse } from 'node:http';
import { DirectiveError } from './directives.ts';
import { type Fault, parseFault } from './faults.ts';
import { parseJson, readBody, sendJson } from './http-io.ts';
import type { Emulator } from './server.ts';
import type { EmulatorConfig, RecordedChatRequest } from './state.ts';

export const ADMIN_PREFIX = '/__emulator/';

class AdminError extends Error {}

type Json = Record<string, unknown>;

/**
 * JSON control surface for tests that run in another process (workerd, Deno, e2e): the same
 * operations as the in-process Emulator object.
 */
export async function handleAdminRequest(
  req: IncomingMessage,
  res: ServerResponse,
  emulator: Emulator,
  pathname: string,
): Promise<void> {
  const route = `${req.method} ${pathname.slice(ADMIN_PREFIX.length)}`;
  try {
    const body = await jsonBody(req);
    const result = await dispatch(route, body, emulator);
    if (result === undefined) {
      sendJson(res, 404, { error: `no admin route ${route}` });
      return;
    }
    sendJson(res, 200, result);
  } catch (error) {
    if (!(error instanceof AdminError || error instanceof DirectiveError)) throw error;
    sendJson(res, 400, { error: error.message });
  }
}

async function dispatch(route: string, body: Json, emulator: Emulator): Promise<unknown> {
  const keyRoute = /^DELETE service-accounts\/([^/]+)$/.exec(route);
  if (keyRoute?.[1]) return { deleted: emulator.deleteServiceAccount(keyRoute[1]) };
  switch (route) {
    case 'GET health':
      return { ok: true, url: emulator.url, tokenUri: emulator.tokenUri };
    case 'POST service-accounts':
      return emulator.createServiceAccount({
        projectId: optional(body, 'projectId', 'string'),
        clientEmail: optional(body, 'clientEmail', 'string'),
      });
    case 'POST access-tokens': {
      const ttl = optional(body, 'ttlSeconds', 'number') ?? emulator.config.tokenTtlSeconds;
      return {
        access_token: emulator.issueAccessToken(ttl),
        expires_in: ttl,
        token_type: 'Bearer',
      };
    }
    case 'GET stats':
      return emulator.stats;
    case 'GET requests':
      return emulator.requests.map(serializable);
    case 'GET faults':
      return emulator.faults.list();
    case 'POST faults': {
      const faults: Fault[] = (Array.isArray(body) ? body : [body]).map(parseFault);
      emulator.faults.add(...faults);
      return { queued: faults.length, pending: emulator.faults.list().length };
    }
    case 'DELETE faults':
      emulator.faults.clear();
      return { pending: 0 };
    case 'GET config':
      return emulator.config;
    case 'POST config':
      return emulator.configure(parseConfig(body));
    case 'POST expire-tokens':
      return { expired: emulator.expireTokens() };
    case 'POST reset':
      emulator.reset();
      return { ok: true };
    default:
      return undefined;
  }
}

async function jsonBody(req: IncomingMessage): Promise<Json> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  const parsed = parseJson(text);
  if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) {
    throw new AdminError('admin request body must be a JSON object or array');
  }
  return parsed.value as Json;
}

function optional<T extends 'string' | 'number' | 'boolean'>(
  body: Json,
  name: string,
  type: T,
): (T extends 'string' ? string : T extends 'number' ? number : boolean) | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== type) throw new AdminError(`"${name}" must be a ${type}`);
  return value as never;
}

function parseConfig(body: Json): Partial<EmulatorConfig> {
  const known: (keyof EmulatorConfig)[] = [
    'tokenTtlSeconds',
    'acceptSelfSignedJwt',
    'clockOffsetMs',
    'chunkDelayMs',
  ];
  const unknown = Object.keys(body).filter((name) => !known.includes(name as keyof EmulatorConfig));
  if (unknown.length > 0) throw new AdminError(`unknown config field(s): ${unknown.join(', ')}`);
  const patch: Partial<EmulatorConfig> = {
    tokenTtlSeconds: optional(body, 'tokenTtlSeconds', 'number'),
    acceptSelfSignedJwt: optional(body, 'acceptSelfSignedJwt', 'boolean'),
    clockOffsetMs: optional(body, 'clockOffsetMs', 'number'),
    chunkDelayMs: optional(body, 'chunkDelayMs', 'number'),
  };
  if (patch.chunkDelayMs !== undefined && !(patch.chunkDelayMs >= 0)) {
    throw new AdminError('"chunkDelayMs" must not be negative');
  }
  if (patch.tokenTtlSeconds !== undefined && !(patch.tokenTtlSeconds > 0)) {
    throw new AdminError('"tokenTtlSeconds" must be positive');
  }
  return patch;
}

/**
 * A recorded request as its JSON can be written: a body nested too deep for JSON.stringify (a
 * fuzzer's 10,000 brackets) is left out, so one such request does not break the whole list. Its
 * `bodyText` still has every byte.
 */
function serializable(request: RecordedChatRequest): RecordedChatRequest {
  try {
    JSON.stringify(request.body);
    return request;
  } catch {
    return { ...request, body: undefined };
  }
}
