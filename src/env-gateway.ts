import type { ExecutionContext } from 'hono';
import { createGateway, type GatewayApp, type GatewayDependencies } from './app.ts';
import { CONFIG_VARIABLES, ConfigError, parseConfig } from './config.ts';
import { GatewayError } from './errors.ts';
import { closeRequestLog, consoleLogSink, openRequestLog, recordWriter } from './request-log.ts';

/** `ctx` is Workers' ExecutionContext; the gateway keeps a token refresh alive with it. */
export type FetchHandler = (
  request: Request,
  ctx?: ExecutionContext,
) => Response | Promise<Response>;

/**
 * Turns a runtime's environment (Workers `env`, Deno's env object) into a request handler, parsing
 * it only when a configuration variable changed. Workers may hand a new `env` object to the same
 * isolate; comparing values instead of identity keeps the token cache across those.
 */
export function createEnvGateway(
  deps: GatewayDependencies = {},
): (env: Record<string, unknown>) => FetchHandler {
  let lastEnv: Record<string, unknown> | null = null;
  let lastValues: unknown[] = [];
  let handler: FetchHandler = () => new Response(null, { status: 500 });

  return function gatewayFor(env) {
    if (env === lastEnv) return handler;
    const values = CONFIG_VARIABLES.map((name) => env[name]);
    if (lastEnv === null || values.some((value, i) => value !== lastValues[i])) {
      handler = buildHandler(env, deps);
    }
    lastEnv = env;
    lastValues = values;
    return handler;
  };
}

function buildHandler(env: Record<string, unknown>, deps: GatewayDependencies): FetchHandler {
  let app: GatewayApp;
  try {
    app = createGateway(parseConfig(env), deps);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return misconfiguredHandler(error, deps);
  }
  return (request, ctx) => app.fetch(request, undefined, ctx);
}

/**
 * Answers health checks as usual (they reveal nothing) and everything else with the problem,
 * each with its request id, server timing and log line, as a working gateway's answers have.
 */
function misconfiguredHandler(problem: ConfigError, deps: GatewayDependencies): FetchHandler {
  const writeLog = recordWriter(deps.log ?? consoleLogSink);
  console.error(
    JSON.stringify({
      level: 'error',
      message: `configuration error: ${problem.message}${problem.detail ? `: ${problem.detail}` : ''}`,
    }),
  );
  const error = new GatewayError(
    500,
    'server_error',
    'gateway_misconfigured',
    `The gateway is misconfigured: ${problem.message}${problem.detail ? " (the gateway's log says why)" : ''}.`,
  );
  return (request) => {
    const log = openRequestLog(request.method, request.headers.get('x-request-id') ?? undefined);
    const healthCheck =
      new URL(request.url).pathname === '/healthz' &&
      (request.method === 'GET' || request.method === 'HEAD');
    if (!healthCheck) log.record.error_code = error.code;
    const response = healthCheck ? Response.json({ status: 'ok' }) : error.toResponse();
    closeRequestLog(log, response, writeLog);
    return response;
  };
}
