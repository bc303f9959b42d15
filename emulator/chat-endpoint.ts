import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  answerFor,
  type ChatRequestBody,
  defaultChunkCount,
  extraContent,
  googleResponseId,
  isChatRequestBody,
  splitIntoChunks,
  thoughtSignatureFor,
  usageFor,
} from './completion.ts';
import { type DirectiveError, type Directives, parseDirectives } from './directives.ts';
import {
  type AuthFailureReason,
  errorForStatus,
  googleError,
  shapeError,
  unauthenticatedError,
} from './google-errors.ts';
import {
  clientGone,
  cutAfterFlush,
  headerRecord,
  parseJson,
  readBody,
  sendJsonWithStall,
  sleep,
} from './http-io.ts';
import { CLOUD_PLATFORM_SCOPE, scopes, timeframeOk, verifyServiceAccountJwt } from './jwt.ts';
import { openEventStream, type StreamEnd, writeCompletionStream } from './sse.ts';
import type { EmulatorState, RecordedChatRequest } from './state.ts';

export const CHAT_PATH =
  /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/endpoints\/([^/]+)\/chat\/completions$/;

// Every documented location, by format (VERTEX.md), and Vertex's two kinds of endpoint id. The
// gateway checks the same formats (src/vertex/path-params.ts); written out again on purpose: the
// stand-in for Google imports nothing from the gateway, so a mistake there cannot hide here too.
// A region's words are bounded as Google's host names are: `{location}-aiplatform` is one DNS
// label, at most 63 characters.
const LOCATION = /^(global|us|eu|[a-z]{1,20}-[a-z]{1,20}[0-9]{1,2})$/;
const ENDPOINT = /^(openapi|[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[0-9]+)$/;

/**
 * What Vertex says of a target it cannot serve: a location or endpoint id it does not know, or a
 * self-deployed endpoint in `global`, which has none.
 */
function problemWithTarget({ location, endpoint }: RecordedChatRequest['params']) {
  if (!LOCATION.test(location)) {
    return googleError(400, `Location "${location}" is not a valid location.`);
  }
  if (!ENDPOINT.test(endpoint)) {
    return googleError(400, `Endpoint id "${endpoint}" is not valid.`);
  }
  if (location === 'global' && endpoint !== 'openapi') {
    return googleError(404, `Endpoint ${endpoint} was not found in global.`);
  }
  return null;
}

/** Audience a self-signed JWT may use instead of the cloud-platform scope (AIP-4111). */
const SELF_SIGNED_AUDIENCE = 'https://aiplatform.googleapis.com/';

export async function handleChatRequest(
  req: IncomingMessage,
  res: ServerResponse,
  state: EmulatorState,
  params: RecordedChatRequest['params'],
): Promise<void> {
  state.stats.chatRequests += 1;
  const bodyText = await readBody(req);
  const parsed = parseJson(bodyText);
  const recorded = state.record({
    method: req.method ?? '',
    path: req.url ?? '',
    params,
    headers: headerRecord(req),
    bodyText,
    body: parsed.ok ? parsed.value : undefined,
  });
  const signal = clientGone(res);
  let cutOnPurpose = false;
  // Set once the directives are known: answers before that (auth, target) never stall or break.
  let bodyStallMs = 0;
  let cutBody = false;
  signal.addEventListener('abort', () => {
    if (!cutOnPurpose) state.stats.clientDisconnects += 1;
  });
  const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    recorded.status = status;
    if (status >= 400) state.stats.chatErrors += 1;
    if (res.destroyed) return Promise.resolve();
    if (cutBody) cutOnPurpose = true;
    return sendJsonWithStall(res, status, body, headers, bodyStallMs, cutBody);
  };

  const authFailure = await authenticate(req.headers.authorization, state);
  if (authFailure) return reply(401, unauthenticatedError(authFailure));
  const targetProblem = problemWithTarget(params);
  if (targetProblem) return reply(targetProblem.error.code, targetProblem);

  const requested = parsed.ok && isObject(parsed.value) ? parsed.value.emulator : undefined;
  let directives: Directives;
  try {
    directives = parseDirectives(requested);
  } catch (error) {
    return reply(400, googleError(400, `emulator: ${(error as DirectiveError).message}`));
  }
  const fault = state.faults.take('chat');
  if (fault) {
    state.stats.faultsApplied += 1;
    // A queued fault overrides whatever the request itself asked for.
    directives = { ...directives, ...fault };
  }
  bodyStallMs = directives.bodyStallMs ?? 0;
  cutBody = directives.cutBody ?? false;
  const headers: Record<string, string> =
    directives.retryAfter === undefined ? {} : { 'retry-after': String(directives.retryAfter) };

  await sleep(directives.headersDelayMs ?? 0, signal);
  if (signal.aborted) return;

  if (directives.status !== undefined) {
    const google = errorForStatus(directives.status, directives.message);
    return reply(
      directives.status,
      fault?.body ?? shapeError(google, directives.errorShape),
      headers,
    );
  }
  if (!parsed.ok) {
    return reply(400, googleError(400, 'Invalid JSON payload received. Unexpected token.'));
  }
  if (!isChatRequestBody(parsed.value)) {
    return reply(
      400,
      googleError(
        400,
        'Invalid chat completions request: "model" (string) and "messages" (array) are required.',
      ),
    );
  }
  const body = parsed.value;
  const content = answerFor(body, directives);
  const signature = thoughtSignatureFor(body, directives);
  const finishReason = directives.finishReason ?? 'stop';
  const id = googleResponseId();
  const created = Math.floor(state.now() / 1000);

  if (body.stream !== true || directives.streamAsJson) {
    // A safety block may come with no content at all (VERTEX.md): an empty reply has none.
    const message: Record<string, unknown> =
      content === '' ? { role: 'assistant' } : { role: 'assistant', content };
    if (signature !== undefined) message.extra_content = extraContent(signature);
    return reply(
      200,
      {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message, finish_reason: finishReason }],
        usage: usageFor(body, content),
      },
      headers,
    );
  }
  const end = await stream(res, state, recorded, signal, headers, {
    body,
    directives,
    content,
    signature,
    finishReason,
    id,
    created,
  });
  if (end === 'aborted') {
    cutOnPurpose = true;
    // The chunks written so far go out first, or a client sees fewer than planned.
    cutAfterFlush(res);
  }
}

interface StreamInput {
  body: ChatRequestBody;
  directives: Directives;
  content: string;
  signature: string | undefined;
  finishReason: string;
  id: string;
  created: number;
}

async function stream(
  res: ServerResponse,
  state: EmulatorState,
  recorded: RecordedChatRequest,
  signal: AbortSignal,
  headers: Record<string, string>,
  input: StreamInput,
): Promise<StreamEnd> {
  const { body, directives, content } = input;
  recorded.status = 200;
  openEventStream(res, headers);
  state.stats.streamsStarted += 1;
  state.stats.openStreams += 1;
  const end = await writeCompletionStream(
    res,
    {
      id: input.id,
      created: input.created,
      model: body.model,
      pieces: splitIntoChunks(content, directives.chunks ?? defaultChunkCount(content)),
      finishReason: input.finishReason,
      thoughtSignature: input.signature,
      usage: body.stream_options?.include_usage === true ? usageFor(body, content) : undefined,
      firstChunkDelayMs: directives.firstChunkDelayMs ?? 0,
      chunkDelayMs: directives.chunkDelayMs ?? state.config.chunkDelayMs,
      errorEventAfterChunks: directives.errorEventAfterChunks,
      errorMessage: directives.message,
      abortAfterChunks: directives.abortAfterChunks,
      truncateAfterChunks: directives.truncateAfterChunks,
      omitDone: directives.omitDone ?? false,
      lineEnd: directives.lineEnding === 'crlf' ? '\r\n' : '\n',
    },
    signal,
  ).finally(() => {
    state.stats.openStreams -= 1;
  });
  if (end === 'cancelled') state.stats.cancelledStreams += 1;
  else if (end === 'aborted' || end === 'truncated') state.stats.abortedStreams += 1;
  else state.stats.completedStreams += 1;
  return end;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Returns why Google would reject the credential, or undefined when it is accepted. */
async function authenticate(
  authorization: string | undefined,
  state: EmulatorState,
): Promise<AuthFailureReason | undefined> {
  if (!authorization) return 'CREDENTIALS_MISSING';
  const match = /^Bearer (\S+)$/i.exec(authorization.trim());
  if (!match?.[1]) return 'ACCESS_TOKEN_TYPE_UNSUPPORTED';
  const token = match[1];
  const status = state.tokenStatus(token);
  if (status === 'valid') return undefined;
  if (status === 'expired') return 'ACCESS_TOKEN_EXPIRED';
  if (!state.config.acceptSelfSignedJwt) return 'ACCESS_TOKEN_TYPE_UNSUPPORTED';
  return checkSelfSignedJwt(token, state);
}

async function checkSelfSignedJwt(
  jwt: string,
  state: EmulatorState,
): Promise<AuthFailureReason | undefined> {
  const checked = await verifyServiceAccountJwt(jwt, state);
  if (!checked.ok) return 'ACCESS_TOKEN_TYPE_UNSUPPORTED';
  const { claims } = checked;
  const nowSeconds = Math.floor(state.now() / 1000);
  if (typeof claims.exp === 'number' && claims.exp <= nowSeconds) return 'ACCESS_TOKEN_EXPIRED';
  const targeted =
    claims.aud === SELF_SIGNED_AUDIENCE || scopes(claims).includes(CLOUD_PLATFORM_SCOPE);
  const self = claims.sub === claims.iss;
  return targeted && self && timeframeOk(claims, nowSeconds)
    ? undefined
    : 'ACCESS_TOKEN_TYPE_UNSUPPORTED';
}
