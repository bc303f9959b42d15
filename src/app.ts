import type { Context } from 'hono';
// hono/tiny is Hono with its PatternRouter: 2.4 KiB gzip less than the default pair of routers.
// With this handful of routes it is no slower: the Vertex route took 8-10 µs per request in a Node
// loop, against 12-13 µs with the default (and the OpenAI chat route skips the router anyway).
import { Hono } from 'hono/tiny';
import { createClientAuthenticator } from './auth/client-auth.ts';
import { allowsModel } from './auth/key-policy.ts';
import { createChatCompletions } from './chat-completions.ts';
import type { Config } from './config.ts';
import { cors, variesByOrigin } from './cors.ts';
import { GatewayError, invalidRequest, notFound } from './errors.ts';
import type { KeepAlive } from './google/access-token.ts';
import { createGoogleAuth } from './google/google-auth.ts';
import { createMemoryRateLimiter } from './limits/memory-rate-limiter.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import { withPublisher } from './openai/model-name.ts';
import { type ModelEntry, modelList } from './openai/models.ts';
import {
  closeRequestLog,
  consoleLogSink,
  type LogSink,
  openRequestLog,
  type RequestLog,
  type RequestRecord,
  recordWriter,
} from './request-log.ts';
import {
  ENDPOINT_PATTERN,
  isApiVersion,
  LOCATION_PATTERN,
  MODEL_GARDEN_ENDPOINT,
  PROJECT_PATTERN,
} from './vertex/path-params.ts';
import { sleep } from './vertex/retry-policy.ts';
import type { VertexTarget } from './vertex/upstream-url.ts';

export { LOCATION_HEADER } from './chat-completions.ts';

export interface GatewayDependencies {
  /** Outbound fetch for the token exchange and Vertex; tests inject their own. */
  fetch?: typeof fetch;
  now?: () => number;
  /** Jitter for retry backoff. */
  random?: () => number;
  /** Waits between retries; tests record the delays instead of sleeping. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Receives each request's JSON log line; console.log unless a runtime batches them. */
  log?: LogSink;
  /**
   * Counts requests for keys with an `rpm` limit. In memory (per isolate) unless the runtime
   * offers a shared store: a Durable Object on Workers, Deno KV on Deno Deploy.
   */
  rateLimiter?: RateLimiter;
}

interface ModelListBody {
  object: 'list';
  data: ModelEntry[];
}

/** The Hono app createGateway returns: its context carries the request's log record. */
export type GatewayApp = Hono<{ Variables: { log: RequestLog } }>;

const NEVER_ABORTED = new AbortController().signal;

const SELF_SIGNED_REFUSED_LINE = JSON.stringify({
  level: 'warn',
  message:
    'Vertex AI refused the self-signed JWT (HTTP 401): this isolate uses the token exchange from now on. Set GOOGLE_AUTH_MODE=exchange to skip the first attempt.',
  event: 'self_signed_jwt_refused',
});

const PER_ISOLATE_LIMITS_LINE = JSON.stringify({
  level: 'warn',
  message:
    'GATEWAY_KEYS has rpm limits, but no shared store is configured (a RATE_LIMITER Durable Object binding on Workers, Deno KV on Deno): each isolate or instance counts on its own and allows the full rpm.',
  event: 'rate_limits_per_isolate',
});

const OPENAI_ROUTE = '/v1/chat/completions';
const VERTEX_ROUTE =
  '/:version/projects/:project/locations/:location/endpoints/:endpoint/chat/completions';
const MODELS_ROUTE = '/v1/models';
// Model ids contain slashes (`google/gemini-2.5-flash`).
const MODEL_ROUTE = `${MODELS_ROUTE}/:model{.+}`;

/**
 * Builds the gateway from a parsed Config. Build it once per isolate: the token cache and the
 * imported signing key live inside. The result is a plain Hono app, so it can be mounted in
 * another Hono or Workers app (`app.route('/ai', createGateway(config))`).
 */
export function createGateway(config: Config, deps: GatewayDependencies = {}): GatewayApp {
  const doFetch: typeof fetch = deps.fetch ?? ((input, init) => fetch(input, init));
  const authenticate = createClientAuthenticator(config);
  const wait = deps.sleep ?? sleep;
  const sink = deps.log ?? consoleLogSink;
  const tokenSource = config.serviceAccount
    ? createGoogleAuth(config.serviceAccount, config.googleAuthMode, {
        fetch: doFetch,
        now: deps.now,
        random: deps.random,
        sleep: (ms) => wait(ms, NEVER_ABORTED),
        onSelfSignedRefused: () => sink(SELF_SIGNED_REFUSED_LINE),
        onRefreshFailed: (error) => sink(refreshFailedLine(error)),
      })
    : null;
  const writeLog = recordWriter(sink);
  const rateLimiter = deps.rateLimiter ?? createMemoryRateLimiter();
  if (rateLimiter.scope !== 'shared' && config.keyPolicies.some((key) => key.rpm !== null)) {
    sink(PER_ISOLATE_LIMITS_LINE);
  }
  const chatCompletions = createChatCompletions(
    config,
    authenticate,
    tokenSource,
    writeLog,
    rateLimiter,
    {
      fetch: doFetch,
      now: deps.now ?? Date.now,
      random: deps.random ?? Math.random,
      sleep: wait,
      limits: config.upstream,
      upstreamOrigin: config.upstreamOrigin,
    },
  );
  const models: ModelListBody = {
    object: 'list',
    data: modelList(config.models, config.modelAliases),
  };
  // A key limited to some models sees only those; lists are built once per key name.
  const modelsByKey = new Map<string, ModelListBody>();

  async function modelsFor(authorization: string | undefined, log: RequestLog) {
    const client = await authenticate(authorization);
    const policy = client.kind === 'service-account' ? client.policy : null;
    if (!policy) return models;
    log.record.key_name = policy.name;
    let list = modelsByKey.get(policy.name);
    if (!list) {
      const data = models.data.filter((entry) =>
        allowsModel(policy, withPublisher(config.modelAliases.get(entry.id) ?? entry.id)),
      );
      list = { object: 'list', data };
      modelsByKey.set(policy.name, list);
    }
    return list;
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
      .map((location) => ({ version: 'v1', project, location, endpoint: MODEL_GARDEN_ENDPOINT }));
  }

  const app: GatewayApp = new Hono();

  // One log line, a request id and server timing for every request, errors included.
  app.use(async function observe(c, next) {
    const log = openRequestLog(c.req.method, c.req.header('x-request-id'));
    c.set('log', log);
    await next();
    closeRequestLog(log, c.res, writeLog);
  });
  const corsEnabled = config.corsOrigins === '*' || config.corsOrigins.size > 0;
  const varyOnOrigin = variesByOrigin(config.corsOrigins);
  if (corsEnabled) app.use(cors(config.corsOrigins));
  // hono/tiny's router takes `/healthz/` for `/healthz`. Google's paths have no trailing slash, so
  // such a path stays an unknown route, as it was with Hono's default router.
  app.use(async function exactPaths(c, next) {
    if (c.req.path.length > 1 && c.req.path.endsWith('/')) throw routeNotFound(c.req.raw);
    await next();
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get(MODELS_ROUTE, async (c) => {
    const log = c.get('log');
    log.record.route = MODELS_ROUTE;
    return c.json(await modelsFor(c.req.header('authorization'), log));
  });
  app.get(MODEL_ROUTE, async (c) => {
    const log = c.get('log');
    log.record.route = `${MODELS_ROUTE}/:model`;
    const { data } = await modelsFor(c.req.header('authorization'), log);
    const id = c.req.param('model');
    // A bare Gemini name, which chat takes, finds its google/ entry too.
    const model =
      data.find((entry) => entry.id === id) ?? data.find((entry) => entry.id === withPublisher(id));
    if (!model) {
      throw new GatewayError(
        404,
        'not_found_error',
        'model_not_found',
        `The model '${id.slice(0, 200)}' is not served by this gateway. GET ${MODELS_ROUTE} lists the models it serves.`,
        { param: 'model' },
      );
    }
    return c.json(model);
  });

  app.post(OPENAI_ROUTE, (c) => {
    const log = c.get('log');
    log.record.route = OPENAI_ROUTE;
    return chatCompletions({
      request: c.req.raw,
      resolveTargets: defaultTargets,
      checkProject: operatorsProject,
      log,
      keepAlive: executionContextOf(c),
    });
  });

  app.post(VERTEX_ROUTE, (c) => {
    const version = c.req.param('version');
    if (!isApiVersion(version)) throw routeNotFound(c.req.raw);
    const log = c.get('log');
    log.record.route = VERTEX_ROUTE;
    return chatCompletions({
      request: c.req.raw,
      log,
      keepAlive: executionContextOf(c),
      // Only a project the caller names is subject to the allow-list; the default one is the
      // operator's own choice.
      checkProject: (project) => assertProjectAllowed(config, project),
      resolveTargets: () => {
        const project = checkedParam('project', c.req.param('project'), PROJECT_PATTERN);
        return [
          {
            version,
            project,
            location: checkedParam('location', c.req.param('location'), LOCATION_PATTERN),
            endpoint: checkedParam('endpoint', c.req.param('endpoint'), ENDPOINT_PATTERN),
          },
        ];
      },
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
  for (const path of ['/healthz', MODELS_ROUTE, MODEL_ROUTE]) {
    app.all(path, (c) => {
      throw methodNotAllowed(c.req.method, 'GET, HEAD');
    });
  }

  app.notFound((c) => routeNotFound(c.req.raw).toResponse());
  // Absent only if a host app routed here around the observe middleware.
  app.onError((error, c) => errorResponse(error, c.get('log')?.record ?? {}));

  /**
   * The chat route without Hono's router, context and middleware chain, which cost about as much
   * CPU per request as the gateway's own work. It does what the observe middleware, the route
   * and onError do, through the same functions. Anything else, and any request CORS must see,
   * goes through Hono; so does the gateway mounted in another app, which routes it itself.
   */
  const honoFetch = app.fetch;
  app.fetch = function gatewayFetch(request, env, executionCtx) {
    if (
      request.method !== 'POST' ||
      pathOf(request.url) !== OPENAI_ROUTE ||
      (corsEnabled && request.headers.has('origin'))
    ) {
      return honoFetch(request, env, executionCtx);
    }
    return serveChat(request, executionCtx);
  };

  async function serveChat(request: Request, keepAlive?: KeepAlive): Promise<Response> {
    const log = openRequestLog('POST', request.headers.get('x-request-id') ?? undefined);
    log.record.route = OPENAI_ROUTE;
    let response: Response;
    try {
      response = await chatCompletions({
        request,
        resolveTargets: defaultTargets,
        checkProject: operatorsProject,
        log,
        keepAlive,
      });
    } catch (error) {
      response = errorResponse(error, log.record);
    }
    closeRequestLog(log, response, writeLog);
    // What the CORS middleware adds to answers without an Origin, on the path that skips it.
    if (varyOnOrigin) response.headers.append('vary', 'Origin');
    return response;
  }
  return app;
}

/** Hono's context throws when the runtime gave no ExecutionContext (Deno, tests). */
function executionContextOf(c: Context): KeepAlive | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

/** A token refresh failed where no request saw it: the old token still serves, for now. */
function refreshFailedLine(error: unknown): string {
  const reason = error instanceof GatewayError ? error.message : 'an unexpected error';
  return JSON.stringify({
    level: 'warn',
    message: `Refreshing the Google credential before it expires failed; the current one serves on, and the refresh is tried again in a few seconds. ${reason}`,
    event: 'token_refresh_failed',
  });
}

/** Renders any error as the OpenAI-shaped answer, noting its code in the request's record. */
function errorResponse(error: unknown, record: Partial<RequestRecord>): Response {
  if (error instanceof GatewayError) {
    record.error_code = error.code;
    return error.toResponse();
  }
  record.error_code = 'internal_error';
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
}

/** The path of an absolute URL, without its query, the way Hono reads it (no URL parse). */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start === -1) return '/';
  const query = url.indexOf('?', start);
  return query === -1 ? url.slice(start) : url.slice(start, query);
}

function checkedParam(name: string, value: string | undefined, pattern: RegExp): string {
  if (value !== undefined && pattern.test(value)) return value;
  throw invalidRequest(
    'invalid_path_parameter',
    `The ${name} in the path is not a valid Vertex AI ${name}.`,
    name,
  );
}

/** The default route's project is the operator's own choice (VERTEX_PROJECT): always served. */
const operatorsProject = (_project: string) => {};

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

// The path as it came (a URL parse would resolve `..` the router did not), and not all of it.
function routeNotFound(request: Request): GatewayError {
  return notFound(`Unknown route: ${request.method} ${pathOf(request.url).slice(0, 200)}`);
}
