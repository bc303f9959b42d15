import { invalidRequest } from '../errors.ts';
import { hasDuplicateTopLevelKey, replaceTopLevelString } from './json-splice.ts';
import { withPublisher } from './model-name.ts';

// OpenAI's roles; `function` is deprecated but still sent by older clients.
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

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

/**
 * `modelGarden`: the request goes to the `openapi` endpoint, where a bare Gemini name needs
 * Google's publisher; a self-deployed endpoint gets the name as the client sent it (or aliased).
 */
export function parseChatRequest(
  text: string,
  aliases: ReadonlyMap<string, string> = NO_ALIASES,
  modelGarden = true,
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
  const problem = firstProblem(json as Record<string, unknown>);
  if (problem) throw problem;

  const duplicate = hasDuplicateTopLevelKey(text, CHECKED_KEYS);
  if (duplicate) {
    throw invalidRequest(
      'duplicate_parameter',
      `The body names '${duplicate}' more than once. Send each parameter once.`,
      duplicate,
    );
  }

  const { model, stream } = json as { model: string; stream?: boolean };
  const named = aliases.get(model) ?? model;
  const upstreamModel = modelGarden ? withPublisher(named) : named;
  return {
    requestedModel: model,
    model: upstreamModel,
    stream: stream === true,
    body: upstreamModel === model ? text : replaceTopLevelString(text, 'model', upstreamModel),
  };
}

/**
 * Only what the gateway itself relies on is checked: `model`, `messages` and their roles, and
 * `stream`. Everything else (tools, extra_body, extra_content, thought signatures, image parts,
 * unknown fields) is Vertex's to judge and is forwarded byte for byte. Checks run in that order
 * and the first failure is reported, naming its parameter as OpenAI does (`messages[1].role`).
 * Written out by hand rather than with a schema library: this runs on every request.
 */
function firstProblem(json: Record<string, unknown>) {
  const { model, messages, stream } = json;
  if (typeof model !== 'string') return typeProblem(json, 'model', 'a string');
  if (model === '') {
    return invalidRequest('invalid_value', "Invalid 'model': it must not be empty.", 'model');
  }
  if (!Array.isArray(messages)) return typeProblem(json, 'messages', 'an array');
  if (messages.length === 0) {
    return invalidRequest(
      'empty_array',
      "Invalid 'messages': empty array. Expected at least one message.",
      'messages',
    );
  }
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return invalidRequest(
        'invalid_type',
        `Invalid type for 'messages[${i}]': expected an object.`,
        `messages[${i}]`,
      );
    }
    const role = (message as { role?: unknown }).role;
    if (!(ROLES as readonly unknown[]).includes(role)) {
      const param = `messages[${i}].role`;
      return invalidRequest(
        'invalid_value',
        `Invalid value for '${param}': expected one of ${ROLES.join(', ')}.`,
        param,
      );
    }
  }
  if (stream !== undefined && typeof stream !== 'boolean') {
    return typeProblem(json, 'stream', 'a boolean');
  }
  return null;
}

// "Missing" only when the member is absent: a present but mistyped value is a type error.
function typeProblem(json: object, param: string, expected: string) {
  return Object.hasOwn(json, param)
    ? invalidRequest('invalid_type', `Invalid type for '${param}': expected ${expected}.`, param)
    : invalidRequest(
        'missing_required_parameter',
        `Missing required parameter: '${param}'.`,
        param,
      );
}
