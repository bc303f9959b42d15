/**
 * Malformed (and occasionally valid) chat request bodies and hostile Vertex path segments, shared
 * by the unit fuzz suite (test/unit/fuzz.test.ts) and the e2e load suite
 * (test/e2e/load.e2e.test.ts).
 *
 * The oracle here is written from the README's contract, not imported from the gateway: the body
 * is UTF-8 text (decoded as `Request.text()` does: a leading BOM dropped, bad bytes replaced by
 * U+FFFD) holding a JSON object whose `model` is a non-empty string, whose `messages` is a
 * non-empty array of objects with a known role, and whose `stream`, if present, is a boolean.
 * Everything else is kept. Content-Type plays no part.
 */
import fc from 'fast-check';

export const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

export interface BodyCase {
  /** What the case is, for failure reports. */
  label: string;
  bytes: Uint8Array;
  /** The Content-Type header to send, or null for none. */
  contentType: string | null;
}

// ---------------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------------

/** What `Request.text()` yields for these bytes (WHATWG "UTF-8 decode"). */
export function decodeBody(bytes: Uint8Array): string {
  return new TextDecoder('utf-8').decode(bytes);
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function isValidChatJson(json: unknown): json is Record<string, unknown> {
  if (!isObject(json)) return false;
  const { model, messages, stream } = json;
  if (typeof model !== 'string' || model.length === 0) return false;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  for (const message of messages) {
    if (!isObject(message)) return false;
    if (!(ROLES as readonly unknown[]).includes(message.role)) return false;
  }
  return stream === undefined || typeof stream === 'boolean';
}

export type Verdict =
  | { valid: false }
  | {
      valid: true;
      /** The decoded body text: what the gateway must forward when it does not rewrite. */
      text: string;
      /** The JSON Vertex must receive: the body, with a bare `gemini-*` model prefixed. */
      forwarded: Record<string, unknown>;
      rewritten: boolean;
    };

/** `modelGarden`: the body goes to the `openapi` endpoint, where bare Gemini names get `google/`. */
export function judgeBody(bytes: Uint8Array, modelGarden = true): Verdict {
  const text = decodeBody(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { valid: false };
  }
  if (!isValidChatJson(json)) return { valid: false };
  // Duplicates of the members the gateway acts on are refused: other parsers may keep the first.
  const names = topLevelNames(text);
  for (const key of ['model', 'messages', 'stream']) {
    if (names.filter((name) => name === key).length > 1) return { valid: false };
  }
  const model = json.model as string;
  const rewritten = modelGarden && model.startsWith('gemini-');
  // Assigning keeps the key where it was, as the gateway's in-place rewrite does.
  if (rewritten) json.model = `google/${model}`;
  return { valid: true, text, forwarded: json, rewritten };
}

/** The member names of a JSON object text's top level, in order, duplicates kept. */
function topLevelNames(text: string): string[] {
  const names: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
    else if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      let next = end + 1;
      while (/\s/.test(text[next] ?? '')) next++;
      // A string followed by a colon is a member name.
      if (depth === 1 && text[next] === ':') names.push(JSON.parse(text.slice(i, end + 1)));
      i = end;
    }
  }
  return names;
}

/**
 * Deep equality of two JSON values, key order included, without recursion: bodies may nest
 * thousands deep, past what recursive comparisons (node:util, vitest) survive.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop() as [unknown, unknown];
    if (Object.is(x, y)) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    const xKeys = Object.keys(x);
    const yKeys = Object.keys(y);
    if (xKeys.length !== yKeys.length) return false;
    for (let i = 0; i < xKeys.length; i++) {
      const key = xKeys[i] as string;
      if (key !== yKeys[i]) return false;
      stack.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]]);
    }
  }
  return true;
}

/** `{"error":{"message","type","param","code"}}` with exactly those keys and types, or why not. */
export function openAIErrorProblem(status: number, contentType: string | null, text: string) {
  if (status < 400 || status > 499) return `status ${status} is not a 4xx`;
  if (!contentType?.includes('application/json')) return `content-type is ${contentType}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `body is not JSON: ${text.slice(0, 200)}`;
  }
  if (!isObject(body) || Object.keys(body).join() !== 'error' || !isObject(body.error)) {
    return `body is not {"error":{...}}: ${text.slice(0, 200)}`;
  }
  const error = body.error;
  const keys = Object.keys(error).sort().join();
  if (keys !== 'code,message,param,type') return `error has keys ${keys}`;
  if (typeof error.message !== 'string' || typeof error.type !== 'string') {
    return `message/type are not strings: ${text.slice(0, 200)}`;
  }
  for (const name of ['param', 'code'] as const) {
    if (error[name] !== null && typeof error[name] !== 'string') {
      return `${name} is neither a string nor null: ${text.slice(0, 200)}`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Building bodies
// ---------------------------------------------------------------------------------------------

const encoder = new TextEncoder();

/** Any JS string as UTF-8 (a lone surrogate becomes U+FFFD, as on the wire). */
export const utf8 = (text: string): Uint8Array => encoder.encode(text);

export function concatBytes(...parts: (Uint8Array | string)[]): Uint8Array {
  const arrays = parts.map((part) => (typeof part === 'string' ? utf8(part) : part));
  const out = new Uint8Array(arrays.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of arrays) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** JSON object text from entries, so duplicate keys and raw tokens (1e999) can be written. */
const objectText = (entries: readonly (readonly [string, string])[]) =>
  `{${entries.map(([key, value]) => `${key}:${value}`).join(',')}}`;

const q = (value: string) => JSON.stringify(value);

const USER = '{"role":"user","content":"Why is the sky blue?"}';
const MESSAGES = `[${USER}]`;
export const VALID_BODY = `{"model":"gemini-2.5-flash","messages":${MESSAGES}}`;

const deep = (depth: number, inner = '') => '['.repeat(depth) + inner + ']'.repeat(depth);
const body = (fields: string) => `{"model":"gemini-2.5-flash","messages":${MESSAGES},${fields}}`;
const withModel = (model: string) => `{"model":${model},"messages":${MESSAGES}}`;
const withMessages = (messages: string) => `{"model":"gemini-2.5-flash","messages":${messages}}`;
const withRole = (role: string) => withMessages(`[{"role":${role},"content":"hi"}]`);
const withStream = (stream: string) => body(`"stream":${stream}`);

const BYTES = {
  bom: Uint8Array.of(0xef, 0xbb, 0xbf),
  utf16leBom: Uint8Array.of(0xff, 0xfe),
  utf16beBom: Uint8Array.of(0xfe, 0xff),
  nul: Uint8Array.of(0x00),
  ff: Uint8Array.of(0xff),
  overlongSlash: Uint8Array.of(0xc0, 0xaf),
  overlongNul: Uint8Array.of(0xc0, 0x80),
  // A UTF-16 surrogate encoded as if it were a code point (CESU-8 / WTF-8): invalid UTF-8.
  encodedSurrogate: Uint8Array.of(0xed, 0xa0, 0x80),
  truncatedEuro: Uint8Array.of(0xe2, 0x82),
  continuation: Uint8Array.of(0x80),
  beyondUnicode: Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
};
export const INVALID_UTF8_SEQUENCES = Object.values(BYTES).filter(
  (bytes) => bytes !== BYTES.bom && bytes !== BYTES.nul,
);

function utf16le(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    out[2 * i] = text.charCodeAt(i) & 0xff;
    out[2 * i + 1] = text.charCodeAt(i) >> 8;
  }
  return out;
}

export const JSON_CT = 'application/json';

/** A case that fast-check reports in readable form (see `preview`). */
export function bodyCaseOf(label: string, bytes: Uint8Array, contentType: string | null): BodyCase {
  const c: BodyCase = { label, bytes, contentType };
  return Object.assign(c, { [fc.toStringMethod]: () => preview(c) });
}

function textCase(label: string, text: string, contentType: string | null = JSON_CT): BodyCase {
  return bodyCaseOf(label, utf8(text), contentType);
}

/**
 * Hand-written nasty bodies. Most are invalid; a few are valid on purpose (they sit on the edge
 * of the contract: BOM, escaped lone surrogates, huge numbers elsewhere).
 */
export function nastyBodies(): BodyCase[] {
  const cases: BodyCase[] = [
    // Not JSON, or JSON that is not an object.
    textCase('empty body', ''),
    textCase('whitespace only', ' \r\n\t'),
    textCase('no content-type, empty', '', null),
    ...[
      'null',
      'true',
      'false',
      '0',
      '-0',
      '1e999',
      '-1e999',
      '"a string"',
      '[]',
      '[{}]',
      '{}',
    ].map((text) => textCase(`top-level ${text}`, text)),
    textCase('array holding a valid body', `[${VALID_BODY}]`),
    textCase('string holding a valid body', q(VALID_BODY)),
    textCase('two bodies back to back', VALID_BODY + VALID_BODY),
    textCase('trailing garbage', `${VALID_BODY}x`),
    textCase('trailing comma', body('"n":1,')),
    textCase('trailing comma in messages', withMessages(`[${USER},]`)),
    textCase('single quotes', VALID_BODY.replaceAll('"', "'")),
    textCase('unquoted keys', '{model:"gemini-2.5-flash",messages:[{role:"user"}]}'),
    textCase('comment', `/* hi */${VALID_BODY}`),
    textCase('line comment', `${VALID_BODY}// hi`),
    textCase('NaN', body('"temperature":NaN')),
    textCase('Infinity', body('"temperature":Infinity')),
    textCase('hex number', body('"n":0x10')),
    textCase('leading zero', body('"n":01')),
    textCase('plus sign', body('"n":+1')),
    textCase('bare fraction', body('"n":.5')),
    textCase('unterminated string', '{"model":"gemini-2.5-flash'),
    textCase('bad escape', withModel('"gemini-\\x41"')),
    textCase('short unicode escape', withModel('"gemini-\\u12"')),
    textCase('raw newline in string', withModel('"gemini-\n2.5"')),
    textCase('raw tab in string', withModel('"gemini-\t2.5"')),
    textCase('raw NUL in string', withModel('"gemini-\u00002.5"')),
    textCase('NUL before the body', `\u0000${VALID_BODY}`),
    textCase('NUL after the body', `${VALID_BODY}\u0000`),
    textCase('NBSP before the body', `\u00a0${VALID_BODY}`),
    textCase('form feed before the body', `\f${VALID_BODY}`),
    textCase('vertical tab after the body', `${VALID_BODY}\v`),
    textCase('U+2028 before the body', `\u2028${VALID_BODY}`),
    textCase(
      'form-encoded',
      'model=gemini-2.5-flash&messages=hi',
      'application/x-www-form-urlencoded',
    ),
    textCase(
      'multipart',
      `--x\r\ncontent-disposition: form-data; name="body"\r\n\r\n${VALID_BODY}\r\n--x--\r\n`,
      'multipart/form-data; boundary=x',
    ),
    textCase('XML', '<chat><model>gemini-2.5-flash</model></chat>', 'application/xml'),

    // model
    textCase('missing model', `{"messages":${MESSAGES}}`),
    ...['""', 'null', '5', '0', '1e999', 'true', 'false', '[]', '["gemini-2.5-flash"]', '{}'].map(
      (model) => textCase(`model ${model}`, withModel(model)),
    ),
    textCase('model {"name":...}', withModel('{"name":"gemini-2.5-flash"}')),
    textCase('model deeply nested', withModel(deep(10_000, '"gemini-2.5-flash"'))),
    textCase(
      'model set, then a number (last wins)',
      `{"model":"gemini-a","model":5,"messages":${MESSAGES}}`,
    ),
    textCase('model set, then null', `{"model":"gemini-a","messages":${MESSAGES},"model":null}`),
    textCase(
      'model only inside __proto__',
      `{"__proto__":{"model":"gemini-a"},"messages":${MESSAGES}}`,
    ),

    // messages
    textCase('missing messages', '{"model":"gemini-2.5-flash"}'),
    ...[
      '[]',
      'null',
      '{}',
      '"hi"',
      '5',
      'true',
      '[null]',
      '[1]',
      '["user"]',
      '[[]]',
      '[[{"role":"user"}]]',
      '[{}]',
      '[{"content":"hi"}]',
      `[${USER},null]`,
      `[${USER},{}]`,
      `{"0":${USER},"length":1}`,
    ].map((messages) => textCase(`messages ${messages}`, withMessages(messages))),
    textCase('messages deeply nested', withMessages(deep(10_000))),
    textCase('messages 100 000 deep, unclosed', withMessages('['.repeat(100_000))),
    textCase('messages set, then emptied', `{"model":"x","messages":${MESSAGES},"messages":[]}`),
    textCase(
      'role only inside __proto__',
      withMessages('[{"__proto__":{"role":"user"},"content":"hi"}]'),
    ),

    // role
    ...[
      '"User"',
      '"USER"',
      '" user"',
      '"user "',
      '"model"',
      '"bot"',
      '""',
      '"\\u0000user"',
      '"us\\u0065r\\u0000"',
      '"\\ud800"',
      '"toString"',
      '"constructor"',
      '"__proto__"',
      'null',
      '5',
      'true',
      '["user"]',
      '{"role":"user"}',
    ].map((role) => textCase(`role ${role}`, withRole(role))),
    textCase('role set, then unknown', withMessages('[{"role":"user","role":"model"}]')),
    textCase('second message has no role', withMessages(`[${USER},{"content":"hi"}]`)),

    // stream
    ...['"true"', '"false"', '1', '0', 'null', '{}', '[]', '[true]', '1e999'].map((stream) =>
      textCase(`stream ${stream}`, withStream(stream)),
    ),
    textCase('stream true, then "yes"', body('"stream":true,"stream":"yes"')),

    // Bytes that are not UTF-8, byte order marks, UTF-16.
    {
      label: 'two BOMs',
      bytes: concatBytes(BYTES.bom, BYTES.bom, VALID_BODY),
      contentType: JSON_CT,
    },
    {
      label: 'BOM after whitespace',
      bytes: concatBytes(' ', BYTES.bom, VALID_BODY),
      contentType: JSON_CT,
    },
    {
      label: 'UTF-16LE with BOM',
      bytes: concatBytes(BYTES.utf16leBom, utf16le(VALID_BODY)),
      contentType: 'application/json; charset=utf-16',
    },
    { label: 'UTF-16LE without BOM', bytes: utf16le(VALID_BODY), contentType: JSON_CT },
    {
      label: 'UTF-16BE BOM then UTF-8',
      bytes: concatBytes(BYTES.utf16beBom, VALID_BODY),
      contentType: JSON_CT,
    },
    {
      label: 'raw NUL byte first',
      bytes: concatBytes(BYTES.nul, VALID_BODY),
      contentType: JSON_CT,
    },
    ...INVALID_UTF8_SEQUENCES.flatMap((bad) => [
      {
        label: `bytes ${[...bad].map((b) => b.toString(16))} before the body`,
        bytes: concatBytes(bad, VALID_BODY),
        contentType: JSON_CT,
      },
      {
        label: `bytes ${[...bad].map((b) => b.toString(16))} between tokens`,
        bytes: concatBytes('{"model":"gemini-2.5-flash",', bad, `"messages":${MESSAGES}}`),
        contentType: JSON_CT,
      },
      {
        label: `bytes ${[...bad].map((b) => b.toString(16))} as the role`,
        bytes: concatBytes('{"model":"x","messages":[{"role":"', bad, '"}]}'),
        contentType: JSON_CT,
      },
      {
        label: `bytes ${[...bad].map((b) => b.toString(16))} inside "user"`,
        bytes: concatBytes('{"model":"x","messages":[{"role":"us', bad, 'er"}]}'),
        contentType: JSON_CT,
      },
    ]),
    {
      label: 'Latin-1 body',
      bytes: Uint8Array.from(withRole('"us\u00e9r"'), (c) => c.charCodeAt(0)),
      contentType: 'application/json; charset=latin1',
    },

    // Big and deep.
    textCase('top-level array 100 000 deep, unclosed', '['.repeat(100_000)),
    textCase('top-level array 5 000 deep', deep(5_000)),
    textCase('top-level object 5 000 deep', `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`),
    textCase(
      '20 000 messages, the last without role',
      withMessages(`[${`${USER},`.repeat(20_000)}{}]`),
    ),
    textCase('a 200 KB role', withRole(q('u'.repeat(200_000)))),
    textCase('a 200 KB number as stream', withStream('9'.repeat(200_000))),
  ];

  // Every proper prefix of a valid body (truncated JSON), and the body with one byte dropped.
  const full = `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"h\\u00e9 \\ud83d\\ude00"}],"stream":true}`;
  for (let i = 1; i < full.length; i++)
    cases.push(textCase(`prefix of ${i} chars`, full.slice(0, i)));

  // Valid on purpose: the edges the gateway must accept and forward intact.
  cases.push(
    textCase('valid', VALID_BODY),
    textCase('valid, text/plain', VALID_BODY, 'text/plain'),
    textCase('valid, no content-type', VALID_BODY, null),
    textCase('valid, form content-type', VALID_BODY, 'application/x-www-form-urlencoded'),
    textCase('valid, JSON whitespace around', ` \r\n\t${VALID_BODY}\n\t\r `),
    { label: 'valid after a BOM', bytes: concatBytes(BYTES.bom, VALID_BODY), contentType: JSON_CT },
    textCase(
      'valid, model a number then a string',
      `{"model":5,"model":"gemini-b","messages":${MESSAGES}}`,
    ),
    textCase(
      'valid, two gemini models',
      `{"model":"gemini-a","messages":${MESSAGES},"model":"gemini-b"}`,
    ),
    textCase(
      'valid, messages empty then set',
      `{"model":"x","messages":[],"messages":${MESSAGES}}`,
    ),
    textCase('valid, escaped lone surrogate model', withModel('"gemini-\\ud800"')),
    textCase('valid, escaped key', `{"mod\\u0065l":"gemini-x","messages":${MESSAGES}}`),
    textCase('valid, escaped NUL model', withModel('"\\u0000"')),
    textCase('valid, model "gemini-"', withModel('"gemini-"')),
    textCase('valid, model with a quote and slash', withModel('"gemini-\\"\\/\\\\"')),
    textCase(
      'valid, huge numbers elsewhere',
      body('"temperature":1e999,"seed":123456789012345678901234567890'),
    ),
    textCase('valid, __proto__ null', body('"__proto__":null')),
    textCase(
      'valid, deep content',
      withMessages(`[{"role":"user","content":${deep(2_000, '"x"')}}]`),
    ),
    textCase(
      'valid, every role',
      withMessages(`[${ROLES.map((r) => `{"role":${q(r)}}`).join(',')}]`),
    ),
    textCase('valid, stream false', withStream('false')),
    textCase(
      'valid, model key inside a nested object first',
      `{"x":{"model":"gemini-a"},"model":"gemini-b","messages":${MESSAGES}}`,
    ),
    {
      label: 'valid, invalid UTF-8 inside the content',
      bytes: concatBytes(
        '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"',
        BYTES.ff,
        '"}]}',
      ),
      contentType: JSON_CT,
    },
  );
  return cases.map((c) => bodyCaseOf(c.label, c.bytes, c.contentType));
}

// ---------------------------------------------------------------------------------------------
// Generated bodies
// ---------------------------------------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/** Strings with everything: ASCII, any code point, lone surrogates, NULs, and near-misses. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc
    .array(fc.oneof(loneSurrogate, fc.constantFrom('\u0000', '\ufeff', '"', '\\', '/')), {
      maxLength: 4,
    })
    .map((parts) => parts.join('')),
  fc.constantFrom('', ' ', 'gemini-', 'gemini-2.5-flash', 'google/gemini-2.5-pro', 'x'),
);

/** JSON text of a string: normally escaped, or with every character as a \u escape. */
const stringText = fc.oneof(
  { weight: 3, arbitrary: nastyString.map(q) },
  {
    weight: 1,
    arbitrary: nastyString.map(
      (s) =>
        `"${[...Array(s.length).keys()].map((i) => `\\u${s.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`,
    ),
  },
);

/** Number text: ordinary doubles, and tokens JSON.stringify never writes (1e999, -0, 1E+2). */
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom(
    '1e999',
    '-1e999',
    '-0',
    '0.0',
    '1E+2',
    '123456789012345678901234567890',
    '5e-324',
  ),
);

/** Any JSON value as text, including deep arrays and raw number tokens. */
const anyValueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: stringText },
  { weight: 2, arbitrary: numberText },
  { weight: 1, arbitrary: fc.constantFrom('null', 'true', 'false', '[]', '{}', '[null]', '[[]]') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3_000 }).map((depth) => deep(depth)) },
);

const validModelText = fc.constantFrom(
  '"gemini-2.5-flash"',
  '"gemini-3-pro-preview"',
  '"google/gemini-2.5-pro"',
  '"meta/llama-3.3-70b-instruct-maas"',
  '"gemini-"',
  '"\\u0067emini-x"',
);
// Each field is right most of the time, so that whole bodies are valid often enough (about one
// in five) to check what is forwarded; every wrong variant still comes up hundreds of times.
const modelText = fc.oneof(
  { weight: 12, arbitrary: validModelText },
  { weight: 1, arbitrary: stringText },
  { weight: 2, arbitrary: anyValueText },
);

const roleText = fc.oneof(
  { weight: 24, arbitrary: fc.constantFrom(...ROLES).map(q) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('User', 'model', 'bot', '', ' user', 'user\u0000', 'toString', '__proto__')
      .map(q),
  },
  { weight: 1, arbitrary: stringText },
  { weight: 1, arbitrary: anyValueText },
);

const contentText = fc.oneof(
  stringText,
  fc.constant('[{"type":"text","text":"hi"},{"type":"image_url","image_url":"gs://b/o.jpg"}]'),
  anyValueText,
);

type Entry = readonly [string, string];
const entry = (key: string, value: fc.Arbitrary<string>) =>
  fc.tuple(fc.constant(q(key)), value) as fc.Arbitrary<Entry>;

/**
 * An object's entries as JSON text: the required ones, some optional ones, now and then a rare
 * one (duplicates of required keys) or an arbitrary key, shuffled; now and then one is dropped.
 */
const entriesText = (
  required: readonly fc.Arbitrary<Entry>[],
  optional: readonly fc.Arbitrary<Entry>[],
  rare: readonly fc.Arbitrary<Entry>[],
) =>
  fc
    .tuple(
      fc.tuple(...required),
      fc.subarray([...optional]).chain((chosen) => fc.tuple(...chosen)),
      fc.oneof(
        { weight: 6, arbitrary: fc.constant<Entry[]>([]) },
        { weight: 1, arbitrary: fc.subarray([...rare]).chain((chosen) => fc.tuple(...chosen)) },
      ),
      fc.oneof(
        { weight: 6, arbitrary: fc.constant<Entry[]>([]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(stringText, anyValueText), { maxLength: 2 }) },
      ),
      fc.oneof(
        { weight: 8, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
    )
    .chain(([must, may, rarely, extra, dropOne]) => {
      const all = [...must, ...may, ...rarely, ...extra];
      return fc.shuffledSubarray(all, { minLength: Math.max(0, all.length - (dropOne ? 1 : 0)) });
    })
    .map(objectText);

const messageText = fc.oneof(
  {
    weight: 24,
    arbitrary: entriesText(
      [entry('role', roleText)],
      [
        entry('content', contentText),
        entry('name', stringText),
        entry('extra_content', fc.constant('{"google":{"thought_signature":"c2ln"}}')),
      ],
      [entry('role', roleText)],
    ),
  },
  { weight: 1, arbitrary: anyValueText },
);

const messagesText = fc.oneof(
  {
    weight: 16,
    arbitrary: fc.array(messageText, { minLength: 1, maxLength: 3 }).map((m) => `[${m.join(',')}]`),
  },
  { weight: 1, arbitrary: fc.constant('[]') },
  { weight: 1, arbitrary: anyValueText },
);

const streamText = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('true', 'false') },
  { weight: 1, arbitrary: anyValueText },
);

/** A chat body as JSON text: near-valid, with each field sometimes missing, wrong or doubled. */
const chatBodyText = entriesText(
  [entry('model', modelText), entry('messages', messagesText)],
  [
    entry('stream', streamText),
    entry('temperature', numberText),
    entry('stream_options', fc.constant('{"include_usage":true}')),
    entry(
      'tools',
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    ),
  ],
  [
    entry('model', modelText),
    entry('messages', messagesText),
    entry('stream', streamText),
    entry('__proto__', anyValueText),
  ],
);

/** Mutations of JSON text, named for reports; `at` picks the place (modulo the length). */
type TextMutation = (text: string, at: number) => string;
const textMutation = fc.oneof(
  { weight: 12, arbitrary: fc.constant<[string, TextMutation]>(['none', (t) => t]) },
  {
    weight: 3,
    arbitrary: fc.constant<[string, TextMutation]>([
      'truncate',
      (t, at) => t.slice(0, at % Math.max(1, t.length)),
    ]),
  },
  {
    weight: 2,
    arbitrary: fc.constant<[string, TextMutation]>([
      'drop a char',
      (t, at) => t.slice(0, at % Math.max(1, t.length)) + t.slice((at % Math.max(1, t.length)) + 1),
    ]),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '\u0000',
        '"',
        ',',
        '}',
        ']',
        '{',
        '[',
        ':',
        '\\',
        '\ufeff',
        '\u00a0',
        'x',
        '\n',
        '\ud800',
      )
      .map((ch): [string, TextMutation] => [
        `insert ${q(ch)}`,
        (t, at) => t.slice(0, at % (t.length + 1)) + ch + t.slice(at % (t.length + 1)),
      ]),
  },
  { weight: 1, arbitrary: fc.constant<[string, TextMutation]>(['wrap in array', (t) => `[${t}]`]) },
  { weight: 1, arbitrary: fc.constant<[string, TextMutation]>(['wrap in string', (t) => q(t)]) },
  {
    weight: 1,
    arbitrary: fc.constant<[string, TextMutation]>([
      'JSON whitespace around',
      (t) => ` \n${t}\t\r`,
    ]),
  },
  {
    weight: 1,
    arbitrary: fc.constant<[string, TextMutation]>(['trailing garbage', (t) => `${t}}`]),
  },
);

/** Byte-level changes applied after encoding. */
type ByteMutation = (bytes: Uint8Array, at: number) => Uint8Array;
const byteMutation = fc.oneof(
  { weight: 12, arbitrary: fc.constant<[string, ByteMutation]>(['none', (b) => b]) },
  {
    weight: 1,
    arbitrary: fc.constant<[string, ByteMutation]>(['BOM', (b) => concatBytes(BYTES.bom, b)]),
  },
  {
    weight: 1,
    arbitrary: fc.constant<[string, ByteMutation]>([
      'two BOMs',
      (b) => concatBytes(BYTES.bom, BYTES.bom, b),
    ]),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(...INVALID_UTF8_SEQUENCES, BYTES.nul)
      .map((bad): [string, ByteMutation] => [
        `insert bytes ${[...bad].map((x) => x.toString(16)).join(' ')}`,
        (b, at) =>
          concatBytes(b.subarray(0, at % (b.length + 1)), bad, b.subarray(at % (b.length + 1))),
      ]),
  },
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | null>(JSON_CT) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<string | null>(
      null,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=utf-16',
      'application/octet-stream',
      '*/*',
      '',
    ),
  },
);

const structured = fc
  .tuple(chatBodyText, textMutation, byteMutation, fc.nat(), contentType)
  .map(([text, [textName, mutateText], [byteName, mutateBytes], at, type]) =>
    bodyCaseOf(
      `structured; text: ${textName}; bytes: ${byteName}`,
      mutateBytes(utf8(mutateText(text, at)), at),
      type,
    ),
  );

const topLevelJson = fc
  .tuple(anyValueText, contentType)
  .map(([text, type]) => bodyCaseOf('any JSON value', utf8(text), type));

const randomText = fc
  .tuple(fc.string({ unit: 'binary', maxLength: 64 }), contentType)
  .map(([text, type]) => bodyCaseOf('random text', utf8(text), type));

const randomBytes = fc
  .tuple(fc.uint8Array({ maxLength: 64 }), contentType)
  .map(([bytes, type]) => bodyCaseOf('random bytes', bytes, type));

/** Generated bodies: mostly near-valid structures, then any JSON, random text and random bytes. */
export const bodyCase: fc.Arbitrary<BodyCase> = fc.oneof(
  { weight: 12, arbitrary: structured },
  { weight: 2, arbitrary: topLevelJson },
  { weight: 1, arbitrary: randomText },
  { weight: 1, arbitrary: randomBytes },
);

/** `count` generated bodies that are all invalid, the same ones for the same seed. */
export function invalidBodies(count: number, seed: number): BodyCase[] {
  return fc.sample(
    bodyCase.filter((c) => !judgeBody(c.bytes).valid),
    { numRuns: count, seed },
  );
}

/** A readable form of a case's body for failure messages: escaped, at most 300 characters. */
export function preview(c: BodyCase): string {
  const text = decodeBody(c.bytes);
  const shown = JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…(${text.length})` : text);
  return `${c.label} [${c.contentType ?? 'no content-type'}] ${shown}`;
}

// ---------------------------------------------------------------------------------------------
// Vertex paths
// ---------------------------------------------------------------------------------------------

/** Google's formats, as the README states them (project id or number, location, endpoint). */
const PROJECT = /^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$/;
const LOCATION = /^(?:global|us|eu|[a-z]{1,20}-[a-z]{1,20}[0-9]{1,2})$/;
const ENDPOINT = /^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[0-9]{1,30})$/;

export interface PathParts {
  version: string;
  project: string;
  location: string;
  endpoint: string;
}

export const vertexPath = (p: PathParts) =>
  `/${p.version}/projects/${p.project}/locations/${p.location}/endpoints/${p.endpoint}/chat/completions`;

/** Percent-decodes what decodes and leaves the rest, like a lenient router. */
function lenientDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

/**
 * The target a path names once a URL parser has normalised it (dot segments, backslashes) and
 * its segments are percent-decoded, if it is one the gateway may call for `allowedProject`;
 * otherwise null.
 */
export function allowedTarget(path: string, allowedProject: string): PathParts | null {
  const pathname = new URL(path, 'http://gateway.test').pathname;
  const parts = pathname.split('/').map(lenientDecode);
  if (parts.length !== 10 || parts[0] !== '') return null;
  const [
    ,
    version,
    projects,
    project,
    locations,
    location,
    endpoints,
    endpoint,
    chat,
    completions,
  ] = parts as [string, string, string, string, string, string, string, string, string, string];
  if (projects !== 'projects' || locations !== 'locations' || endpoints !== 'endpoints')
    return null;
  if (chat !== 'chat' || completions !== 'completions') return null;
  if (version !== 'v1' && version !== 'v1beta1') return null;
  if (!PROJECT.test(project) || project !== allowedProject) return null;
  if (!LOCATION.test(location) || !ENDPOINT.test(endpoint)) return null;
  return { version, project, location, endpoint };
}

/** Segments that try to steer the host or the path, or simply break the format. */
export const HOSTILE_SEGMENTS = [
  '',
  '.',
  '..',
  '...',
  '%2e',
  '%2e%2e',
  '.%2E',
  '%2F',
  'a%2Fb',
  'evil.com%2Fx',
  '%2F%2Fevil.com',
  '%5C',
  'a%5Cb',
  '%40',
  '@',
  'us-central1@evil.com',
  'user:pass@evil.com',
  'us-central1.evil.com',
  'evil.com',
  'us-central1%2F..%2F..%2Fevil',
  '%23',
  '%3F',
  '%3Fx%3D1',
  '%00',
  '%0d%0aHost:%20evil.com',
  '%',
  '%zz',
  '%E0%A4%A',
  '%C0%AF',
  '%252F',
  '%2525',
  'US-CENTRAL1',
  'Openapi',
  'OPENAPI',
  '%20us-central1',
  'us-central1%20',
  'us-central1;x',
  'us-central1%3Bx',
  'us-central1:443',
  '-',
  '1-',
  'us--',
  '%C3%A9',
  'caf%C3%A9',
  '%F0%9F%98%80',
  '%EF%BC%8E%EF%BC%8E', // fullwidth dots
  '%E2%80%AE', // right-to-left override
  'a'.repeat(64),
  'a'.repeat(4_000),
  '9'.repeat(31),
  '$%7Bx%7D',
  '{project}',
  '*',
  '~',
  '%7E',
] as const;

const GOOD = {
  version: ['v1', 'v1beta1'],
  location: ['us-central1', 'global', 'us', 'eu', 'europe-west4'],
  endpoint: ['openapi', '1234567890', 'my-endpoint'],
};

/** Paths with every parameter either good or hostile (and the version sometimes odd). */
export function pathParts(project: string): fc.Arbitrary<PathParts> {
  const hostile = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
    {
      weight: 1,
      arbitrary: fc
        .string({ unit: 'binary', minLength: 1, maxLength: 16 })
        .map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, 'x'))),
    },
    {
      weight: 1,
      arbitrary: fc.webSegment().filter((s) => s.length > 0),
    },
  );
  // Mostly good, so that a fair share of paths is entirely valid and must be forwarded.
  const either = (...good: string[]) =>
    fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...good) }, { weight: 1, arbitrary: hostile });
  return fc.record({
    version: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...GOOD.version) },
      { weight: 1, arbitrary: fc.constantFrom('v2', 'V1', 'v1%2F..', '%76%31', 'v1beta', '..') },
    ),
    project: either(project, project, project, 'other-project-1', '123456789012'),
    location: either(...GOOD.location),
    endpoint: either(...GOOD.endpoint),
  });
}
