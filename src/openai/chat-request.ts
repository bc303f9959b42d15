import * as z from 'zod/mini';
import { invalidRequest } from '../errors.ts';
import { hasDuplicateTopLevelKey, replaceTopLevelString } from './json-splice.ts';

// OpenAI's roles; `function` is deprecated but still sent by older clients.
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

/**
 * Only what the gateway itself relies on is checked. Everything else (tools, extra_body,
 * extra_content, thought signatures, image parts, unknown fields) is Vertex's to judge and is
 * forwarded byte for byte.
 */
const ChatRequestSchema = z.looseObject({
  model: z.string().check(z.minLength(1)),
  messages: z.array(z.looseObject({ role: z.enum(ROLES) })).check(z.minLength(1)),
  stream: z.optional(z.boolean()),
});

// The members the gateway acts on; a duplicate could mean one thing here and another upstream.
const CHECKED_KEYS = ['model', 'messages', 'stream'];

const NO_ALIASES: ReadonlyMap<string, string> = new Map();

export interface ChatRequest {
  /** The model as the client named it. */
  requestedModel: string;
  /** The model sent to Vertex, after aliases and the `google/` prefix. */
  model: string;
  stream: boolean;
  /** The body to send upstream: the client's bytes, with at most the model rewritten. */
  body: string;
}

export function parseChatRequest(
  text: string,
  aliases: ReadonlyMap<string, string> = NO_ALIASES,
): ChatRequest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalidRequest(
      'invalid_json',
      'We could not parse the JSON body of your request. The body must be a JSON object.',
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalidRequest('invalid_json', 'The request body must be a JSON object.');
  }
  const parsed = ChatRequestSchema.safeParse(json);
  if (!parsed.success) throw describeIssue(json, parsed.error.issues[0]);

  const duplicate = hasDuplicateTopLevelKey(text, CHECKED_KEYS);
  if (duplicate) {
    throw invalidRequest(
      'duplicate_parameter',
      `The body names '${duplicate}' more than once. Send each parameter once.`,
      duplicate,
    );
  }

  const { model, stream } = parsed.data;
  const target = aliases.get(model) ?? model;
  // Vertex names Gemini models by publisher; OpenAI-style clients send the bare name.
  const upstreamModel = target.startsWith('gemini-') ? `google/${target}` : target;
  return {
    requestedModel: model,
    model: upstreamModel,
    stream: stream === true,
    body: upstreamModel === model ? text : replaceTopLevelString(text, 'model', upstreamModel),
  };
}

function describeIssue(json: object, issue: z.core.$ZodIssue | undefined) {
  const path = issue?.path ?? [];
  const param = path.reduce<string>(
    (name, part) =>
      typeof part === 'number'
        ? `${name}[${part}]`
        : name
          ? `${name}.${String(part)}`
          : String(part),
    '',
  );
  const missing = issue?.code === 'invalid_type' && !hasPath(json, path);
  if (missing) {
    return invalidRequest(
      'missing_required_parameter',
      `Missing required parameter: '${param}'.`,
      param,
    );
  }
  switch (issue?.code) {
    case 'too_small':
      return param === 'messages'
        ? invalidRequest(
            'empty_array',
            "Invalid 'messages': empty array. Expected at least one message.",
            param,
          )
        : invalidRequest('invalid_value', `Invalid '${param}': it must not be empty.`, param);
    case 'invalid_value':
      return invalidRequest(
        'invalid_value',
        `Invalid value for '${param}': expected one of ${ROLES.join(', ')}.`,
        param,
      );
    case 'invalid_type':
      return invalidRequest(
        'invalid_type',
        `Invalid type for '${param}': expected ${expectedType(issue.expected)}.`,
        param,
      );
    default:
      return invalidRequest('invalid_value', `Invalid value for '${param}'.`, param || null);
  }
}

// zod leaves the offending input out of its issues, so "absent" is decided from the body itself.
function hasPath(json: object, path: readonly PropertyKey[]): boolean {
  let node: unknown = json;
  for (const part of path) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, part)) return false;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return true;
}

function expectedType(expected: string): string {
  return expected === 'object' ? 'an object' : expected === 'array' ? 'an array' : `a ${expected}`;
}
