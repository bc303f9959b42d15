import { isPlainModelName, MODEL_NAME, withPublisher } from '../openai/model-name.ts';
import { PROJECT_PATTERN } from '../vertex/path-params.ts';

/**
 * One entry of GATEWAY_KEYS: a client key known only by its SHA-256, and what it may do. The
 * configuration never holds the key itself, so it can be read, diffed and shared safely.
 */
export interface KeyPolicy {
  /** How logs and errors name the key. */
  name: string;
  /** Lowercase hex SHA-256 of the key's UTF-8 bytes. */
  sha256: string;
  /**
   * Vertex model names the key may use, compared after aliasing and the `google/` prefix; an
   * entry ending in `*` matches by prefix. Null allows every model.
   */
  models: readonly string[] | null;
  /** Projects the key may reach, by either route. Null allows those the gateway allows. */
  projects: ReadonlySet<string> | null;
  /** Requests per minute; null for no limit. */
  rpm: number | null;
}

export const KEY_NAME = /^[A-Za-z0-9][\w.@:-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/i;
const MAX_RPM = 1_000_000;
const FIELDS = new Set(['name', 'sha256', 'models', 'projects', 'rpm']);

export function allowsModel(policy: KeyPolicy, model: string): boolean {
  if (policy.models === null) return true;
  // A prefix entry must not let `google/gemini-2.5-flash/../gemini-2.5-pro` by.
  if (!isPlainModelName(model)) return false;
  const bare = !model.includes('/');
  for (const pattern of policy.models) {
    if (!pattern.endsWith('*')) {
      if (model === pattern) return true;
    } else if (pattern === '*' || bare || pattern.includes('/')) {
      // A bare prefix is for bare names: `g*` must not reach `google/imagen-4.0` by its "g".
      if (model.startsWith(pattern.slice(0, -1))) return true;
    }
  }
  return false;
}

export function allowsProject(policy: KeyPolicy, project: string): boolean {
  return policy.projects === null || policy.projects.has(project);
}

/**
 * Parses GATEWAY_KEYS. Throws an Error whose message says what is wrong and where (by index and
 * name); it never repeats a hash, so a message is safe to log. Unknown fields are refused: a typo
 * such as `"rpms"` would otherwise silently leave a key unlimited.
 */
export function parseKeyPolicies(text: string): KeyPolicy[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('must be a JSON array of {"name","sha256","models"?,"projects"?,"rpm"?}');
  }
  if (!Array.isArray(json)) {
    throw new Error('must be a JSON array of {"name","sha256","models"?,"projects"?,"rpm"?}');
  }
  const names = new Set<string>();
  const hashes = new Set<string>();
  return json.map((item: unknown, index) => {
    const policy = parseEntry(item, index);
    if (names.has(policy.name)) throw new Error(`has two entries named "${policy.name}"`);
    if (hashes.has(policy.sha256)) {
      throw new Error(`entry "${policy.name}" has the same sha256 as an earlier entry`);
    }
    names.add(policy.name);
    hashes.add(policy.sha256);
    return policy;
  });
}

function parseEntry(item: unknown, index: number): KeyPolicy {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new Error(`entry ${index} must be an object`);
  }
  const entry = item as Record<string, unknown>;
  const { name } = entry;
  if (typeof name !== 'string' || !KEY_NAME.test(name)) {
    throw new Error(
      `entry ${index} needs a "name" of 1 to 64 letters, digits and . _ - @ : (starting with a letter or digit)`,
    );
  }
  const where = `entry "${name}"`;
  const unknown = Object.keys(entry).find((field) => !FIELDS.has(field));
  if (unknown !== undefined) {
    throw new Error(
      `${where} has an unknown field "${unknown.slice(0, 40)}" (known: ${[...FIELDS].join(', ')})`,
    );
  }
  const { sha256, models, projects, rpm } = entry;
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    throw new Error(
      `${where} needs "sha256": the hex SHA-256 of the key (npm run new-key prints it)`,
    );
  }
  return {
    name,
    sha256: sha256.toLowerCase(),
    models: models === undefined ? null : modelPatterns(models, where),
    projects: projects === undefined ? null : projectSet(projects, where),
    rpm: rpm === undefined ? null : requestsPerMinute(rpm, where),
  };
}

function modelPatterns(value: unknown, where: string): string[] {
  const valid =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (pattern) =>
        typeof pattern === 'string' &&
        (pattern === '*' ||
          MODEL_NAME.test(pattern.endsWith('*') ? pattern.slice(0, -1) : pattern)),
    );
  if (!valid) {
    throw new Error(
      `${where} has "models" that is not a non-empty array of model names (a trailing * matches a prefix; leave "models" out to allow every model)`,
    );
  }
  return [...new Set((value as string[]).flatMap(asVertexPatterns))];
}

/**
 * The prefix the request's model gets, so "gemini-2.5-flash" here means what it means there. A
 * bare pattern that could match a Gemini name (`gemini*`, `g*`) gets it too: requests for
 * `gemini-…` reach the check as `google/gemini-…`. One that could also match other bare names
 * (`g*` matches `gemma-3`) is kept as it is as well.
 */
function asVertexPatterns(pattern: string): string[] {
  if (!pattern.endsWith('*') || pattern === '*' || pattern.includes('/')) {
    return [withPublisher(pattern)];
  }
  const stem = pattern.slice(0, -1);
  if (stem.startsWith('gemini-')) return [`google/${pattern}`];
  return 'gemini-'.startsWith(stem) ? [`google/${pattern}`, pattern] : [pattern];
}

function projectSet(value: unknown, where: string): Set<string> {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((project) => typeof project === 'string' && PROJECT_PATTERN.test(project))
  ) {
    throw new Error(
      `${where} has "projects" that is not a non-empty array of Google Cloud project ids (leave it out to allow every project the gateway serves)`,
    );
  }
  return new Set(value as string[]);
}

function requestsPerMinute(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_RPM) {
    throw new Error(`${where} has "rpm" that is not a whole number from 1 to ${MAX_RPM}`);
  }
  return value;
}
