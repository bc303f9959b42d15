import { describe, expect, it } from 'vitest';
import { replaceTopLevelString } from '../../src/openai/json-splice.ts';

const splice = (text: string) => replaceTopLevelString(text, 'model', 'google/gemini-2.5-flash');

describe('replaceTopLevelString', () => {
  it('replaces the top-level model value and nothing else', () => {
    const text = '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}';
    expect(splice(text)).toBe(
      '{"model":"google/gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}',
    );
  });

  it('leaves nested "model" keys alone, before and after the top-level one', () => {
    const text =
      '{"metadata":{"model":"nested-a"},"tools":[{"model":"nested-b"}],"model":"gemini-x","extra_body":{"google":{"model":"nested-c"}}}';
    const out = splice(text);
    expect(out).toBe(
      '{"metadata":{"model":"nested-a"},"tools":[{"model":"nested-b"}],"model":"google/gemini-2.5-flash","extra_body":{"google":{"model":"nested-c"}}}',
    );
    const parsed = JSON.parse(out);
    expect(parsed.metadata.model).toBe('nested-a');
    expect(parsed.tools[0].model).toBe('nested-b');
    expect(parsed.extra_body.google.model).toBe('nested-c');
  });

  it('is not fooled by "model" inside string values or escaped quotes', () => {
    const text =
      '{"messages":[{"role":"user","content":"say \\"model\\":\\"x\\", \\\\"}],"note":"\\"model\\":\\"fake\\"","model":"gemini-x"}';
    const out = splice(text);
    expect(JSON.parse(out)).toEqual({ ...JSON.parse(text), model: 'google/gemini-2.5-flash' });
    expect(out.replace('"google/gemini-2.5-flash"', '"gemini-x"')).toBe(text);
  });

  it('does not treat a string value equal to "model" as the key', () => {
    const text = '{"role":"model","model":"gemini-x","name":"model"}';
    expect(splice(text)).toBe('{"role":"model","model":"google/gemini-2.5-flash","name":"model"}');
  });

  it('matches a key written with escapes, as JSON.parse does', () => {
    const text = '{"mod\\u0065l":"gemini-x"}';
    expect(JSON.parse(splice(text))).toEqual({ model: 'google/gemini-2.5-flash' });
  });

  it('replaces the last duplicate, the one JSON.parse keeps', () => {
    const text = '{"model":"first","messages":[],"model":"gemini-x"}';
    const out = splice(text);
    expect(out).toBe('{"model":"first","messages":[],"model":"google/gemini-2.5-flash"}');
    expect(JSON.parse(out).model).toBe('google/gemini-2.5-flash');
  });

  it.each([
    ['{ "model" : "gemini-x" }', '{ "model" : "google/gemini-2.5-flash" }'],
    [
      '{\n  "model":\n\t"gemini-x",\n  "n": 1\n}',
      '{\n  "model":\n\t"google/gemini-2.5-flash",\n  "n": 1\n}',
    ],
    [
      '\r\n{"n":1 ,\r\n"model"\r\n:\r\n"gemini-x"}\r\n',
      '\r\n{"n":1 ,\r\n"model"\r\n:\r\n"google/gemini-2.5-flash"}\r\n',
    ],
  ])('handles whitespace %j', (text, expected) => {
    expect(splice(text)).toBe(expected);
  });

  it('keeps large integers and number spellings elsewhere byte-exact', () => {
    const text =
      '{"seed":12345678901234567890,"model":"gemini-x","user_id":9007199254740993,"temperature":1.0,"top_p":1e-7,"logit_bias":{"50256":-100}}';
    const out = splice(text);
    expect(out).toBe(
      '{"seed":12345678901234567890,"model":"google/gemini-2.5-flash","user_id":9007199254740993,"temperature":1.0,"top_p":1e-7,"logit_bias":{"50256":-100}}',
    );
    // Re-serialising would have lost these.
    expect(JSON.stringify(JSON.parse(text))).not.toContain('12345678901234567890');
  });

  it('escapes the replacement as a JSON string', () => {
    const out = replaceTopLevelString('{"model":"x"}', 'model', 'a"b\\c\n');
    expect(JSON.parse(out).model).toBe('a"b\\c\n');
  });

  it('leaves the text unchanged when there is no top-level string value for the key', () => {
    for (const text of [
      '{"messages":[]}',
      '{"model":null}',
      '{"model":42}',
      '{"x":{"model":"nested"}}',
      '{"model":["gemini-x"]}',
    ]) {
      expect(splice(text)).toBe(text);
    }
  });

  it('keeps non-ASCII text around the splice intact', () => {
    const text = '{"messages":[{"role":"user","content":"héllo 🌍 \\u00e9"}],"model":"gemini-x"}';
    expect(splice(text)).toBe(
      '{"messages":[{"role":"user","content":"héllo 🌍 \\u00e9"}],"model":"google/gemini-2.5-flash"}',
    );
  });
});

describe('replaceTopLevelString against random JSON', () => {
  // A small seeded generator: failures reproduce, and no dependency is needed.
  function prng(seed: number) {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }

  const STRINGS = [
    'model',
    'm"odel',
    'a\\b',
    '}',
    '{',
    '[',
    ']',
    ',',
    ':',
    'é',
    '😀',
    '\u2028',
    '',
    ' ',
  ];

  function randomValue(random: () => number, depth: number): unknown {
    const pick = random();
    if (depth > 3 || pick < 0.35) {
      const scalar = random();
      if (scalar < 0.4) return STRINGS[Math.floor(random() * STRINGS.length)];
      if (scalar < 0.6) return Math.floor(random() * 1e6) / 100;
      if (scalar < 0.8) return random() < 0.5;
      return null;
    }
    if (pick < 0.6) {
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    }
    return randomObject(random, depth + 1);
  }

  function randomObject(random: () => number, depth: number): Record<string, unknown> {
    const object: Record<string, unknown> = {};
    const size = Math.floor(random() * 5);
    for (let i = 0; i < size; i++) {
      const key =
        random() < 0.3 ? 'model' : (STRINGS[Math.floor(random() * STRINGS.length)] ?? 'k');
      object[key] = randomValue(random, depth);
    }
    return object;
  }

  it('changes exactly the top-level "model" string in 3000 random documents', () => {
    const random = prng(20261125);
    for (let i = 0; i < 3000; i++) {
      const document = randomObject(random, 0);
      const text = JSON.stringify(document, null, i % 3 === 0 ? undefined : i % 3);
      const out = replaceTopLevelString(text, 'model', 'google/x');
      const expected =
        typeof document.model === 'string' ? { ...document, model: 'google/x' } : document;
      expect(JSON.parse(out), text).toEqual(expected);
      if (typeof document.model !== 'string') expect(out).toBe(text);
    }
  });
});
