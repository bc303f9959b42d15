import * as z from 'zod/mini';
import { type KeyPolicy, parseKeyPolicies } from './auth/key-policy.ts';
import { parseServiceAccountKey, type ServiceAccountKey } from './google/service-account-key.ts';
import { MODEL_NAME } from './openai/model-name.ts';
import { isAllowedOutboundUrl } from './url-policy.ts';
import { LOCATION_PATTERN, PROJECT_PATTERN } from './vertex/path-params.ts';

/** The gateway's settings, parsed once per isolate from Workers vars/secrets or Deno's env. */
export interface Config {
  serviceAccount: ServiceAccountKey | null;
  /** Keys clients present as `Authorization: Bearer <key>`. */
  clientKeys: readonly string[];
  /** Keys known by their SHA-256, each with its own models, projects and rate limit. */
  keyPolicies: readonly KeyPolicy[];
  /** How the service account authenticates to Vertex: a token exchange, or a self-signed JWT. */
  googleAuthMode: GoogleAuthMode;
  allowTokenPassthrough: boolean;
  defaultProject: string | null;
  defaultLocation: string;
  /** `'*'` allows any project a caller names in the path. */
  allowedProjects: '*' | ReadonlySet<string>;
  /** An origin that replaces Google's hosts (emulator, tests, private endpoints). */
  upstreamOrigin: string | null;
  /** Locations the default route tries, in order, after the default one fails. */
  fallbackLocations: readonly string[];
  upstream: UpstreamLimits;
  /** Request bodies larger than this are refused with 413 before being read whole. */
  maxRequestBytes: number;
  /** What `GET /v1/models` lists. */
  models: readonly string[];
  /** Model names clients may send, and the Vertex model each stands for. */
  modelAliases: ReadonlyMap<string, string>;
  /** Browser origins allowed to call the gateway; `'*'` allows any. */
  corsOrigins: '*' | ReadonlySet<string>;
}

export type GoogleAuthMode = 'exchange' | 'self-signed';

export interface UpstreamLimits {
  /** Retries after the first attempt, per location. */
  maxRetries: number;
  /** No retry starts once this much time has passed since the first attempt. */
  retryBudgetMs: number;
  /** The wait for Vertex's response headers. */
  timeoutMs: number;
  /** The longest silence allowed between two chunks of a stream. */
  streamIdleTimeoutMs: number;
}

/** Defaults sized for long LLM generations; the README explains each. */
export const DEFAULT_UPSTREAM_LIMITS: UpstreamLimits = {
  maxRetries: 2,
  retryBudgetMs: 30_000,
  // A non-streamed answer sends its headers only when generation ends: minutes, for long ones.
  timeoutMs: 600_000,
  // Thinking models can stay silent for a long while before their first token.
  streamIdleTimeoutMs: 300_000,
};

// Vertex refuses requests over 20 MB of inline data; a larger body could never succeed.
export const DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024;

/** Google's generally available Gemini models, by the names Vertex's OpenAI endpoint takes. */
export const DEFAULT_MODELS = [
  'google/gemini-2.5-pro',
  'google/gemini-2.5-flash',
  'google/gemini-2.5-flash-lite',
];

const ORIGIN = /^https?:\/\/[^/\s]+$/;

/**
 * A setting that cannot be used. The message names the variable, never its value: values may be
 * secrets, and the message is shown to any caller. `detail` is for the operator's log only: which
 * GATEWAY_KEYS entry, with its team name and projects, which callers need not learn.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly variable: string;
  readonly detail: string | null;
  constructor(variable: string, problem: string, detail: string | null = null) {
    super(`${variable} ${problem}`);
    this.variable = variable;
    this.detail = detail;
  }
}

const GATEWAY_KEYS_INVALID = 'is not a valid list of client keys';

// Unset, empty and whitespace-only all mean "not configured".
const optionalText = z.pipe(
  z.transform((v: unknown) => (typeof v === 'string' ? v.trim() || undefined : v)),
  z.optional(z.string({ error: 'must be a string' })),
);

const commaList = z.pipe(
  optionalText,
  z.transform((v) =>
    v === undefined
      ? []
      : v
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean),
  ),
);

const FLAG_VALUES: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

const booleanFlag = z.pipe(
  optionalText,
  z.transform((v, ctx) => {
    if (v === undefined) return false;
    const flag = FLAG_VALUES[v.toLowerCase()];
    if (flag === undefined)
      ctx.issues.push({ code: 'custom', message: 'must be "true" or "false"', input: null });
    return flag === true;
  }),
);

// Workers [vars] may hold TOML booleans; Deno's env only strings.
const booleanVariable = z.pipe(
  z.transform((v: unknown) => (typeof v === 'boolean' ? String(v) : v)),
  booleanFlag,
);

// Workers [vars] may hold TOML numbers; Deno's env only strings.
const integerVariable = (min: number, max: number) =>
  z.pipe(
    z.transform((v: unknown) => (typeof v === 'number' ? String(v) : v)),
    optionalText.check(
      z.refine((v) => v === undefined || (/^\d+$/.test(v) && +v >= min && +v <= max), {
        error: `must be a whole number from ${min} to ${max}`,
      }),
    ),
  );

const aliasMap = z.pipe(
  optionalText,
  z.transform((v, ctx) => {
    const aliases = new Map<string, string>();
    if (v === undefined) return aliases;
    let json: unknown;
    try {
      json = JSON.parse(v);
    } catch {
      json = null;
    }
    const valid =
      typeof json === 'object' &&
      json !== null &&
      !Array.isArray(json) &&
      Object.entries(json).every(
        ([from, to]) => MODEL_NAME.test(from) && typeof to === 'string' && MODEL_NAME.test(to),
      );
    if (!valid) {
      ctx.issues.push({
        code: 'custom',
        message: 'must be a JSON object mapping model names to model names',
        input: null,
      });
      return aliases;
    }
    for (const [from, to] of Object.entries(json as Record<string, string>)) aliases.set(from, to);
    return aliases;
  }),
);

const keyPolicies = z.pipe(
  optionalText,
  z.transform((v, ctx) => {
    if (v === undefined) return [];
    try {
      return parseKeyPolicies(v);
    } catch (error) {
      ctx.issues.push({ code: 'custom', message: (error as Error).message, input: null });
      return [];
    }
  }),
);

const GOOGLE_AUTH_MODES: readonly string[] = ['exchange', 'self-signed'] satisfies GoogleAuthMode[];

const matching = (pattern: RegExp, error: string) =>
  optionalText.check(z.refine((v) => v === undefined || pattern.test(v), { error }));

const EnvSchema = z.object({
  GOOGLE_SERVICE_ACCOUNT_KEY: optionalText,
  // HTTP carries header values as bytes, and runtimes read them as Latin-1: a key with any other
  // character, or a space (the bearer is one token), could never match what a client sends.
  GATEWAY_API_KEYS: commaList.check(
    z.refine((keys) => keys.every((key) => /^[\x21-\x7e]+$/.test(key)), {
      error:
        'must hold only printable ASCII characters without spaces: a key with others can never match',
    }),
  ),
  GATEWAY_KEYS: keyPolicies,
  GOOGLE_AUTH_MODE: optionalText.check(
    z.refine((v) => v === undefined || GOOGLE_AUTH_MODES.includes(v), {
      error: 'must be "exchange" or "self-signed"',
    }),
  ),
  ALLOW_TOKEN_PASSTHROUGH: booleanVariable,
  VERTEX_PROJECT: matching(PROJECT_PATTERN, 'is not a Google Cloud project id or number'),
  VERTEX_LOCATION: matching(
    LOCATION_PATTERN,
    'is not a Vertex AI location such as us-central1, europe-west4, us, eu or global',
  ),
  VERTEX_ALLOWED_PROJECTS: commaList.check(
    z.refine((list) => list.every((p) => p === '*' || PROJECT_PATTERN.test(p)), {
      error: 'must be "*" or a comma-separated list of project ids',
    }),
  ),
  VERTEX_FALLBACK_LOCATIONS: commaList.check(
    z.refine((list) => list.every((l) => LOCATION_PATTERN.test(l)), {
      error: 'must be a comma-separated list of Vertex AI locations such as europe-west4,us-east5',
    }),
  ),
  UPSTREAM_MAX_RETRIES: integerVariable(0, 10),
  UPSTREAM_RETRY_BUDGET_MS: integerVariable(0, 600_000),
  UPSTREAM_TIMEOUT_MS: integerVariable(1, 3_600_000),
  STREAM_IDLE_TIMEOUT_MS: integerVariable(1, 3_600_000),
  MAX_REQUEST_BYTES: integerVariable(1, 1024 * 1024 * 1024),
  MODELS: commaList.check(
    z.refine((list) => list.every((m) => MODEL_NAME.test(m)), {
      error: 'must be a comma-separated list of model names such as google/gemini-2.5-flash',
    }),
  ),
  MODEL_ALIASES: aliasMap,
  CORS_ORIGINS: commaList.check(
    z.refine((list) => list.every((o) => o === '*' || ORIGIN.test(o)), {
      error: 'must be "*" or a comma-separated list of origins such as https://app.example.com',
    }),
  ),
  VERTEX_BASE_URL: optionalText.check(
    z.refine((v) => v === undefined || (URL.canParse(v) && isBareOrigin(new URL(v))), {
      error: 'must be an origin such as https://host:port (http only on loopback), with no path',
    }),
  ),
});

function isBareOrigin(url: URL): boolean {
  return isAllowedOutboundUrl(url) && url.pathname === '/' && !url.search && !url.hash;
}

/** The variables the gateway reads; a change to any of them means a new Config. */
export const CONFIG_VARIABLES = Object.keys(EnvSchema.shape);

export function parseConfig(env: Record<string, unknown>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? 'configuration');
    const problem = issue?.message ?? 'is invalid';
    throw variable === 'GATEWAY_KEYS'
      ? new ConfigError(variable, GATEWAY_KEYS_INVALID, problem)
      : new ConfigError(variable, problem);
  }
  const vars = parsed.data;

  let serviceAccount: ServiceAccountKey | null = null;
  if (vars.GOOGLE_SERVICE_ACCOUNT_KEY !== undefined) {
    try {
      serviceAccount = parseServiceAccountKey(vars.GOOGLE_SERVICE_ACCOUNT_KEY);
    } catch (error) {
      throw new ConfigError('GOOGLE_SERVICE_ACCOUNT_KEY', (error as Error).message);
    }
  }
  for (const variable of ['GATEWAY_API_KEYS', 'GATEWAY_KEYS'] as const) {
    if (vars[variable].length > 0 && !serviceAccount) {
      throw new ConfigError(
        variable,
        'is set but GOOGLE_SERVICE_ACCOUNT_KEY is not: the gateway needs a service account to call Vertex AI for clients that present a gateway key',
      );
    }
  }
  if (vars.GOOGLE_AUTH_MODE === 'self-signed' && !serviceAccount) {
    throw new ConfigError(
      'GOOGLE_AUTH_MODE',
      'is "self-signed" but GOOGLE_SERVICE_ACCOUNT_KEY is not set: only a service account can sign its own JWT',
    );
  }

  const defaultProject = vars.VERTEX_PROJECT ?? serviceAccount?.projectId ?? null;
  if (defaultProject !== null && !PROJECT_PATTERN.test(defaultProject)) {
    throw new ConfigError(
      'GOOGLE_SERVICE_ACCOUNT_KEY',
      'has a "project_id" that is not a project id',
    );
  }
  const allowed = vars.VERTEX_ALLOWED_PROJECTS;
  const allowedProjects: Config['allowedProjects'] = allowed.includes('*')
    ? '*'
    : new Set(allowed.length > 0 ? allowed : defaultProject ? [defaultProject] : []);
  for (const policy of vars.GATEWAY_KEYS) {
    const outside = [...(policy.projects ?? [])].find(
      (project) =>
        allowedProjects !== '*' && !allowedProjects.has(project) && project !== defaultProject,
    );
    if (outside !== undefined) {
      throw new ConfigError(
        'GATEWAY_KEYS',
        GATEWAY_KEYS_INVALID,
        `entry "${policy.name}" lists project "${outside}", which the gateway does not serve: add it to VERTEX_ALLOWED_PROJECTS`,
      );
    }
  }
  return {
    serviceAccount,
    clientKeys: vars.GATEWAY_API_KEYS,
    keyPolicies: vars.GATEWAY_KEYS,
    googleAuthMode: (vars.GOOGLE_AUTH_MODE ?? 'exchange') as GoogleAuthMode,
    allowTokenPassthrough: vars.ALLOW_TOKEN_PASSTHROUGH,
    defaultProject,
    defaultLocation: vars.VERTEX_LOCATION ?? 'us-central1',
    allowedProjects,
    upstreamOrigin: vars.VERTEX_BASE_URL ? new URL(vars.VERTEX_BASE_URL).origin : null,
    fallbackLocations: vars.VERTEX_FALLBACK_LOCATIONS,
    upstream: {
      maxRetries: integerOr(vars.UPSTREAM_MAX_RETRIES, DEFAULT_UPSTREAM_LIMITS.maxRetries),
      retryBudgetMs: integerOr(
        vars.UPSTREAM_RETRY_BUDGET_MS,
        DEFAULT_UPSTREAM_LIMITS.retryBudgetMs,
      ),
      timeoutMs: integerOr(vars.UPSTREAM_TIMEOUT_MS, DEFAULT_UPSTREAM_LIMITS.timeoutMs),
      streamIdleTimeoutMs: integerOr(
        vars.STREAM_IDLE_TIMEOUT_MS,
        DEFAULT_UPSTREAM_LIMITS.streamIdleTimeoutMs,
      ),
    },
    maxRequestBytes: integerOr(vars.MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_BYTES),
    models: vars.MODELS.length > 0 ? vars.MODELS : DEFAULT_MODELS,
    modelAliases: vars.MODEL_ALIASES,
    corsOrigins: vars.CORS_ORIGINS.includes('*')
      ? '*'
      : new Set(vars.CORS_ORIGINS.map((origin) => origin.toLowerCase())),
  };
}

const integerOr = (value: string | undefined, fallback: number) =>
  value === undefined ? fallback : Number(value);
