import type { ClientAuthenticator } from './auth/client-auth.ts';
import { enforceModel, enforceRateLimit, enforceTarget } from './auth/key-enforcement.ts';
import type { Config } from './config.ts';
import type { AccessTokenSource, KeepAlive } from './google/access-token.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import { parseChatRequest } from './openai/chat-request.ts';
import { tokenUsage, usageOfCompletion } from './openai/usage.ts';
import { readBodyText } from './request-body.ts';
import type { RequestLog, RequestRecord } from './request-log.ts';
import { clippedForLog, roundMs, serverTiming } from './request-log.ts';
import { MODEL_GARDEN_ENDPOINT } from './vertex/path-params.ts';
import { guardEventStream } from './vertex/stream-guard.ts';
import {
  callVertex,
  type GoogleCredential,
  type UpstreamEnvironment,
} from './vertex/upstream-call.ts';
import type { VertexTarget } from './vertex/upstream-url.ts';

/** Names the Vertex location that answered, so failover is visible to the caller. */
export const LOCATION_HEADER = 'x-vertex-location';

export interface ChatContext {
  request: Request;
  /** Resolves the location-ordered targets; throws for a path the gateway will not serve. */
  resolveTargets: () => VertexTarget[];
  /**
   * Refuses a project the gateway does not serve, where the caller chose it. Required, so that no
   * route can leave it out by mistake and serve any project.
   */
  checkProject: (project: string) => void;
  log: RequestLog;
  /** The runtime's ExecutionContext, where it has one (Workers), for a token refresh. */
  keepAlive?: KeepAlive;
}

/**
 * The chat completions handler, shared by both routes. Auth first, then the target, then the
 * body: each step refuses before the next costs anything. The log record is filled as facts
 * become known; a stream's line is written when the stream ends.
 */
export function createChatCompletions(
  config: Config,
  authenticate: ClientAuthenticator,
  tokens: AccessTokenSource | null,
  writeLog: (record: RequestRecord) => void,
  rateLimiter: RateLimiter,
  upstream: UpstreamEnvironment,
) {
  return async function chatCompletions(context: ChatContext): Promise<Response> {
    const { request } = context;
    const { record } = context.log;
    const client = await authenticate(request.headers.get('authorization') ?? undefined);
    const policy = client.kind === 'service-account' ? client.policy : null;
    if (policy) record.key_name = policy.name;
    const targets = context.resolveTargets();
    // Every target has the same project and endpoint: failover changes only the location.
    const target = targets[0] as VertexTarget;
    // The key's own limits first: a key held to some projects must not learn, from which of two
    // refusals it gets, which other projects the gateway serves.
    if (policy) enforceTarget(policy, target);
    context.checkProject(target.project);
    const chat = parseChatRequest(
      await readBodyText(request, config.maxRequestBytes),
      config.modelAliases,
      target.endpoint === MODEL_GARDEN_ENDPOINT,
    );
    record.model = clippedForLog(chat.requestedModel);
    record.upstream_model = clippedForLog(chat.model);
    record.stream = chat.stream;
    if (policy) enforceModel(policy, chat.requestedModel, chat.model);
    // Counted last, so a request refused for its own content does not use up the key's minute.
    const limitHeaders =
      policy?.rpm != null ? await enforceRateLimit(rateLimiter, policy, policy.rpm) : null;

    let credential: GoogleCredential;
    if (client.kind === 'passthrough') credential = client;
    else if (tokens) credential = { kind: 'service-account', tokens };
    else throw new Error('unreachable: gateway keys require a service account');

    const upstreamStarted = performance.now();
    const result = await callVertex(
      {
        targets,
        body: chat.body,
        stream: chat.stream,
        signal: request.signal,
        credential,
        keepAlive: context.keepAlive,
      },
      upstream,
    );
    const upstreamDone = performance.now();
    record.upstream_ms = roundMs(upstreamDone - upstreamStarted);
    record.attempts = result.attempts;
    record.location = result.location;
    if (!result.ok) {
      record.upstream_status = result.upstreamStatus;
      throw result.error.withHeaders({
        // Only an answer that reached Vertex names a location; a failed token exchange did not.
        ...(result.attempts > 0 ? { [LOCATION_HEADER]: result.location } : {}),
        // The request was counted: the client's view of its remaining minute should say so.
        ...limitHeaders,
      });
    }
    const upstreamResponse = result.response;
    record.upstream_status = upstreamResponse.status;
    // All headers at once, request id and timing included: on Workers each later `set` on a
    // Response is a call into the runtime.
    context.log.headersSet = true;
    const common = {
      ...limitHeaders,
      [LOCATION_HEADER]: result.location,
      'x-request-id': record.request_id,
      // The clock read once for both figures: on Workers each read is a call into the runtime.
      'server-timing': serverTiming(
        roundMs(upstreamDone - context.log.startedAt),
        record.upstream_ms,
      ),
    };

    if (result.bytes !== null) {
      record.usage = usageOfCompletion(result.bytes);
      const contentType = upstreamResponse.headers.get('content-type') ?? 'application/json';
      return new Response(result.bytes, {
        status: upstreamResponse.status,
        headers: { ...common, 'content-type': contentType },
      });
    }

    const headers = {
      ...common,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    };
    // forwardToVertex refuses a stream answer without a body, which would look like an empty one.
    if (!upstreamResponse.body) throw new Error('unreachable: a stream answer without a body');
    context.log.deferred = true;
    const body = guardEventStream(upstreamResponse.body, {
      idleTimeoutMs: config.upstream.streamIdleTimeoutMs,
      onEnd(summary) {
        record.total_ms = roundMs(performance.now() - context.log.startedAt);
        record.stream_outcome = summary.outcome;
        if (summary.errorCode) record.error_code = summary.errorCode;
        record.usage = tokenUsage(summary.usage);
        writeLog(record);
      },
    });
    return new Response(body, { status: upstreamResponse.status, headers });
  };
}
