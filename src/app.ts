import { Hono } from 'hono';
import { createClientAuthenticator } from './auth/client-auth.ts';
import type { Config } from './config.ts';
import { GatewayError, invalidRequest, notFound } from './errors.ts';
import { createServiceAccountTokenSource } from './google/access-token.ts';
import { parseChatRequest } from './openai/chat-request.ts';
import { readBodyText } from './request-body.ts';
import {
  ENDPOINT_PATTERN,
  isApiVersion,
  LOCATION_PATTERN,
  PROJECT_PATTERN,
} from './vertex/path-params.ts';
import { sleep } from './vertex/retry-policy.ts';
import { guardEventStream } from './vertex/stream-guard.ts';
import {
  callVertex,
  type GoogleCredential,
  type UpstreamEnvironment,
} from './vertex/upstream-call.ts';
import type { VertexTarget } from './vertex/upstream-url.ts';

export interface GatewayDependencies {
  /** Outbound fetch for the token exchange and Vertex; tests inject their own. */
  fetch?: typeof fetch;
  now?: () => number;
  /** Jitter for retry backoff. */
  random?: () => number;
  /** Waits between retries; tests record the delays instead of sleeping. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const NEVER_ABORTED = new AbortController().signal;

/** Names the Vertex location that answered, so failover is visible to the caller. */
export const LOCATION_HEADER = 'x-vertex-location';

const OPENAI_ROUTE = '/v1/chat/completions';
const VERTEX_ROUTE =
  '/:version/projects/:project/locations/:location/endpoints/:endpoint/chat/completions';

/**
 * Builds the gateway from a parsed Config. Build it once per isolate: the token cache and the
 * imported signing key live inside.
 */
export function createGateway(config: Config, deps: GatewayDependencies = {}): Hono {
  const doFetch: typeof fetch = deps.fetch ?? ((input, init) => fetch(input, init));
  const authenticate = createClientAuthenticator(config);
  const wait = deps.sleep ?? sleep;
  const tokenSource = config.serviceAccount
    ? createServiceAccountTokenSource(config.serviceAccount, {
        fetch: doFetch,
        now: deps.now,
        random: deps.random,
        sleep: (ms) => wait(ms, NEVER_ABORTED),
      })
    : null;

  const upstream: UpstreamEnvironment = {
    fetch: doFetch,
    now: deps.now ?? Date.now,
    random: deps.random ?? Math.random,
    sleep: wait,
    limits: config.upstream,
    upstreamOrigin: config.upstreamOrigin,
  };

  /** Auth first, then the target, then the body: each step refuses before the next costs. */
  async function chatCompletions(
    request: Request,
    resolveTargets: () => VertexTarget[],
  ): Promise<Response> {
    const client = await authenticate(request.headers.get('authorization') ?? undefined);
    const targets = resolveTargets();
    const chat = parseChatRequest(await readBodyText(request, config.maxRequestBytes));
    const credential: GoogleCredential =
      client.kind === 'passthrough'
        ? client
        : { kind: 'service-account', tokens: serviceAccountTokens() };
    const result = await callVertex(
      { targets, body: chat.body, stream: chat.stream, signal: request.signal, credential },
      upstream,
    );
    if (!result.ok) {
      result.error.headers[LOCATION_HEADER] = result.location;
      throw result.error;
    }
    const headers = new Headers({ [LOCATION_HEADER]: result.location });
    if (!chat.stream) {
      headers.set(
        'content-type',
        result.response.headers.get('content-type') ?? 'application/json',
      );
      return new Response(result.response.body, { status: result.response.status, headers });
    }
    headers.set('content-type', 'text/event-stream; charset=utf-8');
    headers.set('cache-control', 'no-cache');
    const body = result.response.body
      ? guardEventStream(result.response.body, {
          idleTimeoutMs: config.upstream.streamIdleTimeoutMs,
        })
      : null;
    return new Response(body, { status: result.response.status, headers });
  }

  function serviceAccountTokens() {
    if (!tokenSource) throw new Error('unreachable: gateway keys require a service account');
    return tokenSource;
  }

  function defaultTargets(): VertexTarget[] {
    if (!config.defaultProject) {
      throw new GatewayError(
        500,
        'server_error',
        'default_project_not_configured',
        `This gateway has no default project, so ${OPENAI_ROUTE} is unavailable: set VERTEX_PROJECT, or call /v1/projects/{project}/locations/{location}/endpoints/openapi/chat/completions.`,
      );
    }
    const project = config.defaultProject;
    // Failover is for the default route only: a caller who names a location in the path may
    // need its data to stay there.
    return [config.defaultLocation, ...config.fallbackLocations]
      .filter((location, i, all) => all.indexOf(location) === i)
      .map((location) => ({ version: 'v1', project, location, endpoint: 'openapi' }));
  }

  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.post(OPENAI_ROUTE, (c) => chatCompletions(c.req.raw, defaultTargets));

  app.post(VERTEX_ROUTE, (c) => {
    const version = c.req.param('version');
    if (!isApiVersion(version)) throw routeNotFound(c.req.raw);
    return chatCompletions(c.req.raw, () => {
      const project = checkedParam('project', c.req.param('project'), PROJECT_PATTERN);
      // Only a project the caller names is subject to the allow-list; the default one is the
      // operator's own choice.
      assertProjectAllowed(config, project);
      return [
        {
          version,
          project,
          location: checkedParam('location', c.req.param('location'), LOCATION_PATTERN),
          endpoint: checkedParam('endpoint', c.req.param('endpoint'), ENDPOINT_PATTERN),
        },
      ];
    });
  });

  for (const path of [OPENAI_ROUTE, VERTEX_ROUTE]) {
    app.all(path, (c) => {
      if (path === VERTEX_ROUTE && !isApiVersion(c.req.param('version') ?? '')) {
        throw routeNotFound(c.req.raw);
      }
      throw methodNotAllowed(c.req.method, 'POST');
    });
  }
  app.all('/healthz', (c) => {
    throw methodNotAllowed(c.req.method, 'GET, HEAD');
  });

  app.notFound((c) => routeNotFound(c.req.raw).toResponse());
  app.onError((error) => {
    if (error instanceof GatewayError) return error.toResponse();
    // Unexpected: log the message only (never request data), answer without internals.
    console.error(
      JSON.stringify({ level: 'error', message: 'unhandled gateway error', error: String(error) }),
    );
    return new GatewayError(
      500,
      'server_error',
      'internal_error',
      'The gateway failed unexpectedly.',
    ).toResponse();
  });
  return app;
}

function checkedParam(name: string, value: string | undefined, pattern: RegExp): string {
  if (value !== undefined && pattern.test(value)) return value;
  throw invalidRequest(
    'invalid_path_parameter',
    `The ${name} in the path is not a valid Vertex AI ${name}.`,
    name,
  );
}

function assertProjectAllowed(config: Config, project: string): void {
  if (config.allowedProjects === '*' || config.allowedProjects.has(project)) return;
  throw new GatewayError(
    403,
    'permission_error',
    'project_not_allowed',
    `This gateway does not serve project "${project}". Its operator can allow it with VERTEX_ALLOWED_PROJECTS.`,
  );
}

// RFC 9110 §15.5.6: a 405 lists the methods the resource does support.
function methodNotAllowed(method: string, allow: string): GatewayError {
  return new GatewayError(
    405,
    'invalid_request_error',
    'method_not_allowed',
    `${method} is not allowed here; use ${allow.split(',')[0]}.`,
    { headers: { allow } },
  );
}

function routeNotFound(request: Request): GatewayError {
  return notFound(`Unknown route: ${request.method} ${new URL(request.url).pathname}`);
}
