import { Hono } from 'hono';
import { createClientAuthenticator } from './auth/client-auth.ts';
import type { Config } from './config.ts';
import { GatewayError, invalidRequest, notFound } from './errors.ts';
import { createServiceAccountTokenSource } from './google/access-token.ts';
import { parseChatRequest } from './openai/chat-request.ts';
import { forwardToVertex } from './vertex/forward.ts';
import {
  ENDPOINT_PATTERN,
  isApiVersion,
  LOCATION_PATTERN,
  PROJECT_PATTERN,
} from './vertex/path-params.ts';
import { chatCompletionsUrl, type VertexTarget } from './vertex/upstream-url.ts';

export interface GatewayDependencies {
  /** Outbound fetch for the token exchange and Vertex; tests inject their own. */
  fetch?: typeof fetch;
  now?: () => number;
}

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
  const tokenSource = config.serviceAccount
    ? createServiceAccountTokenSource(config.serviceAccount, { fetch: doFetch, now: deps.now })
    : null;

  /** Auth first, then the target, then the body: each step refuses before the next costs. */
  async function chatCompletions(
    request: Request,
    resolveTarget: () => VertexTarget,
  ): Promise<Response> {
    const credential = await authenticate(request.headers.get('authorization') ?? undefined);
    const target = resolveTarget();
    const chat = parseChatRequest(await request.text());
    const forward = (accessToken: string) =>
      forwardToVertex(
        {
          url: chatCompletionsUrl(target, config.upstreamOrigin),
          accessToken,
          body: chat.body,
          stream: chat.stream,
          signal: request.signal,
        },
        doFetch,
      );
    if (credential.kind === 'passthrough') return forward(credential.accessToken);
    return forwardWithServiceAccount(forward);
  }

  /**
   * A 401 from Vertex on a cached token means Google revoked or expired it early: drop it and try
   * once more with a fresh one. A caller's own token is never retried; its 401 is theirs.
   */
  async function forwardWithServiceAccount(
    forward: (token: string) => Promise<Response>,
  ): Promise<Response> {
    if (!tokenSource) throw new Error('unreachable: gateway keys require a service account');
    const token = await tokenSource.getToken();
    try {
      return await forward(token);
    } catch (error) {
      if (!(error instanceof GatewayError) || error.status !== 401) throw error;
      tokenSource.invalidate(token);
      return forward(await tokenSource.getToken());
    }
  }

  function defaultTarget(): VertexTarget {
    if (!config.defaultProject) {
      throw new GatewayError(
        500,
        'server_error',
        'default_project_not_configured',
        `This gateway has no default project, so ${OPENAI_ROUTE} is unavailable: set VERTEX_PROJECT, or call /v1/projects/{project}/locations/{location}/endpoints/openapi/chat/completions.`,
      );
    }
    return {
      version: 'v1',
      project: config.defaultProject,
      location: config.defaultLocation,
      endpoint: 'openapi',
    };
  }

  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.post(OPENAI_ROUTE, (c) => chatCompletions(c.req.raw, defaultTarget));

  app.post(VERTEX_ROUTE, (c) => {
    const version = c.req.param('version');
    if (!isApiVersion(version)) throw routeNotFound(c.req.raw);
    return chatCompletions(c.req.raw, () => {
      const project = checkedParam('project', c.req.param('project'), PROJECT_PATTERN);
      // Only a project the caller names is subject to the allow-list; the default one is the
      // operator's own choice.
      assertProjectAllowed(config, project);
      return {
        version,
        project,
        location: checkedParam('location', c.req.param('location'), LOCATION_PATTERN),
        endpoint: checkedParam('endpoint', c.req.param('endpoint'), ENDPOINT_PATTERN),
      };
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
