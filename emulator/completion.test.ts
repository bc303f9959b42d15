import { describe, expect, it } from 'vitest';
import {
  type ChatRequestBody,
  defaultAnswer,
  defaultChunkCount,
  deterministicText,
  splitIntoChunks,
} from './completion.ts';

const ask = (content: unknown, model = 'google/gemini-2.5-flash'): ChatRequestBody => ({
  model,
  messages: [{ role: 'user', content }],
});

const FOOTER = /\n\n\(A demo answer from the local Vertex emulator, standing in for (\S+)\.\)$/;

describe('defaultAnswer', () => {
  it('is deterministic, quotes the prompt and says at the end that the emulator wrote it', () => {
    const answer = defaultAnswer(ask('Why is the sky blue?'));
    expect(defaultAnswer(ask('Why is the sky blue?'))).toBe(answer);
    expect(answer).toContain('"Why is the sky blue?"');
    expect(answer).not.toMatch(/You said/);
    expect(FOOTER.exec(answer)?.[1]).toBe('google/gemini-2.5-flash');
    // Several sentences, not an echo.
    expect(answer.replace(FOOTER, '').split(/[.!?](\s|$)/).length).toBeGreaterThan(3);
  });

  it('answers greetings, questions, writing requests and statements differently', () => {
    const prompts = [
      'Hello there!',
      'Why is the sky blue?',
      'Write a haiku about the sea.',
      'Our release is next week',
    ];
    const bodies = prompts.map((p) => defaultAnswer(ask(p)).replaceAll(`"${p}"`, '"…"'));
    expect(new Set(bodies).size).toBe(prompts.length);
    for (const [i, prompt] of prompts.entries()) {
      expect(defaultAnswer(ask(prompt))).toContain(prompt);
      expect(bodies[i]).not.toContain(prompt);
    }
    expect(defaultAnswer(ask('Write a haiku about the sea.'))).toMatch(/draft|first pass/);
  });

  it('answers the last user message only, with text parts joined', () => {
    const answer = defaultAnswer({
      model: 'google/gemini-2.5-flash',
      messages: [
        { role: 'user', content: 'earlier question' },
        { role: 'assistant', content: 'earlier answer' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'first part' },
            { type: 'text', text: 'second part?' },
          ],
        },
      ],
    });
    expect(answer).toContain('"first part second part?"');
    expect(answer).not.toContain('earlier');
  });

  it('names every image URL, in both image_url forms, and shortens long data: URLs', () => {
    const inline = `data:image/png;base64,${'A'.repeat(5000)}`;
    const answer = defaultAnswer(
      ask([
        { type: 'text', text: 'Describe the following image:' },
        { type: 'image_url', image_url: 'gs://cloud-samples-data/generative-ai/image/scones.jpg' },
        { type: 'image_url', image_url: { url: 'https://example.com/dog.jpg' } },
        { type: 'image_url', image_url: { url: inline } },
      ]),
    );
    expect(answer).toContain('"Describe the following image:"');
    expect(answer).toContain('gs://cloud-samples-data/generative-ai/image/scones.jpg');
    expect(answer).toContain('https://example.com/dog.jpg');
    expect(answer).toContain('data:image/png;base64,AAAA');
    expect(answer.length).toBeLessThan(1000);
    expect(answer).toMatch(/Image 3 \(/);
  });

  it('still answers a message with no text', () => {
    expect(defaultAnswer(ask(''))).toMatch(/^Hello!.*\n\n\(A demo answer/s);
    expect(defaultAnswer(ask([{ type: 'image_url', image_url: 'gs://b/c.png' }]))).toMatch(
      /^The image \(gs:\/\/b\/c\.png\) shows /,
    );
  });
});

describe('splitIntoChunks', () => {
  it('cuts at word starts when the text has them', () => {
    const text = defaultAnswer(ask('Why is the sky blue?'));
    const pieces = splitIntoChunks(text, defaultChunkCount(text));
    expect(pieces.length).toBeGreaterThanOrEqual(6);
    expect(pieces.join('')).toBe(text);
    for (const piece of pieces.slice(0, -1)) expect(piece).toMatch(/\s$/);
    for (const piece of pieces.slice(1)) expect(piece).toMatch(/^\S/);
  });

  it('keeps the exact count and content, words or not', () => {
    expect(splitIntoChunks('The capital of France is Paris.', 5)).toEqual([
      'The ',
      'capital ',
      'of France ',
      'is ',
      'Paris.',
    ]);
    expect(splitIntoChunks('x'.repeat(100), 7)).toHaveLength(7);
    expect(splitIntoChunks('one two', 7)).toHaveLength(7);
    const text = deterministicText(100_000);
    const pieces = splitIntoChunks(text, defaultChunkCount(text));
    expect(pieces).toHaveLength(98);
    expect(pieces.join('')).toBe(text);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(1024 + 16);
  });

  it('never splits a surrogate pair', () => {
    const text = '😀'.repeat(50);
    for (const count of [3, 7, 49]) {
      const pieces = splitIntoChunks(text, count);
      expect(pieces.join('')).toBe(text);
      for (const piece of pieces) expect(piece.length % 2).toBe(0);
    }
  });
});

describe('defaultChunkCount', () => {
  it('streams a short answer in several pieces and a long one in pieces of at most 1 KiB', () => {
    expect(defaultChunkCount('hi')).toBe(2);
    expect(defaultChunkCount('x'.repeat(100))).toBe(4);
    expect(defaultChunkCount('x'.repeat(300))).toBe(8);
    expect(defaultChunkCount('x'.repeat(5000))).toBe(16);
    expect(defaultChunkCount('x'.repeat(100_000))).toBe(98);
  });
});
