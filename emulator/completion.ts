import { createHash, randomBytes } from 'node:crypto';
import type { Directives } from './directives.ts';

/** The part of an OpenAI chat request the emulator reads; everything else is only recorded. */
export interface ChatRequestBody {
  model: string;
  messages: unknown[];
  stream?: unknown;
  stream_options?: { include_usage?: unknown };
  [field: string]: unknown;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function isChatRequestBody(value: unknown): value is ChatRequestBody {
  return isRecord(value) && typeof value.model === 'string' && Array.isArray(value.messages);
}

/** Text and image URLs of the last user message; accepts both image_url forms in use. */
export function lastUserMessage(messages: unknown[]): { text: string; images: string[] } {
  const message = messages.findLast((m) => isRecord(m) && m.role === 'user');
  if (!isRecord(message)) return { text: '', images: [] };
  if (typeof message.content === 'string') return { text: message.content, images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  for (const part of Array.isArray(message.content) ? message.content : []) {
    if (!isRecord(part)) continue;
    if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    const image = part.image_url;
    if (typeof image === 'string') images.push(image);
    else if (isRecord(image) && typeof image.url === 'string') images.push(image.url);
  }
  return { text: texts.join(' '), images };
}

/** What the last user message asks for, judged from its wording alone. */
type PromptKind = 'empty' | 'greeting' | 'writing' | 'question' | 'statement';

const WRITING =
  /^(please\s+)?((can|could|would) you\s+)?(please\s+)?(write|draft|compose|create|generate)\b/i;
const GREETING = /^(hi|hello|hey|hiya|howdy|greetings|good (morning|afternoon|evening))\b/i;
const QUESTION =
  /\?\s*$|^(who|what|when|where|why|how|which|is|are|can|could|should|would|do|does|did|will|explain|describe|summari[sz]e|compare|define|tell me about)\b/i;

function promptKind(text: string): PromptKind {
  const trimmed = text.trim();
  if (!trimmed) return 'empty';
  if (WRITING.test(trimmed)) return 'writing';
  if (GREETING.test(trimmed) && trimmed.split(/\s+/).length <= 6) return 'greeting';
  if (QUESTION.test(trimmed)) return 'question';
  return 'statement';
}

// Two replies per kind, so a conversation does not repeat itself word for word. Each quotes the
// prompt verbatim: tests (and people) can tell which message an answer belongs to.
type Reply = (quoted: string) => string;
const REPLIES: Record<Exclude<PromptKind, 'empty'>, [Reply, Reply]> = {
  greeting: [
    (q) =>
      `Hi there! ${q} to you too. I can answer questions, draft and edit text, or describe images. What would you like to work on today?`,
    (q) =>
      `Hello, and welcome! Thanks for your message, ${q}. How can I help? I can explain things, write a first draft, or take a look at an image.`,
  ],
  writing: [
    (q) =>
      `Sure! Here is a short draft for ${q}:\n\nThe morning light spilled over quiet streets,\nand every window held a small, bright promise.\nBy noon, the city had remembered its voice.\n\nI kept it brief. Tell me the tone, length or audience you have in mind and I will revise it.`,
    (q) =>
      `Happy to help. Here is a first pass at ${q}:\n\nEvery journey starts with a single step, and this one starts with yours.\nKeep what works, question what does not, and leave room for surprise.\n\nWant it longer, shorter, or in a different style? Just say so.`,
  ],
  question: [
    (q) =>
      `Good question. The short answer to ${q} rests on a few key ideas, so let me take them in order. First, the underlying cause; then how it shows up in practice; and finally the exceptions people most often run into. If you tell me what you need it for, I can go deeper on any of these.`,
    (q) =>
      `Here is how I would think about ${q}. Start with the basic mechanism, because everything else follows from it. Then look at one or two concrete examples to see it at work. Finally, check the edge cases, which is usually where the interesting details are.`,
  ],
  statement: [
    (q) =>
      `Thanks for sharing that. On ${q}, a good way forward is to break it into smaller parts, handle the most important one first, and check the result before moving on. Would you like me to go into any part in more detail?`,
    (q) =>
      `Understood: ${q}. The main point is clear, and there are a couple of details worth checking before acting on it. Tell me which part matters most to you and I will focus there.`,
  ],
};

const SCENES = [
  'a clearly lit subject in the centre of the frame, against a plain background',
  'an everyday scene with several objects and soft, natural light',
  'a close-up with fine detail and a shallow depth of field',
];

/** FNV-1a: a stable choice of wording from the prompt text, the same on every run. */
function promptSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

// Inline images can be megabytes of base64; a remote URL is quoted whole, however long.
const shownUrl = (url: string) =>
  url.startsWith('data:') && url.length > 80 ? `${url.slice(0, 60)}…` : url;

function describeImages(images: string[], seed: number): string {
  return images
    .map((url, i) => {
      const which = images.length === 1 ? 'The image' : `Image ${i + 1}`;
      return `${which} (${shownUrl(url)}) shows ${SCENES[(seed + i) % SCENES.length]}.`;
    })
    .join(' ');
}

/**
 * The default answer: a deterministic, model-like reply to the last user message. It quotes the
 * user's text verbatim, names every image URL (long data: URLs shortened), and ends by saying
 * that the local emulator wrote it.
 */
export function defaultAnswer(body: ChatRequestBody): string {
  const { text, images } = lastUserMessage(body.messages);
  const seed = promptSeed(text);
  const quoted = `"${text}"`;
  const kind = promptKind(text);
  let reply: string;
  if (images.length > 0) {
    const about = kind === 'empty' ? '' : `You asked: ${quoted}. `;
    reply = `${about}${describeImages(images, seed)} Let me know if you would like more detail.`;
  } else if (kind === 'empty') {
    reply =
      'Hello! Your message looks empty. Ask me a question, ask me to write something, or send an image, and I will answer here.';
  } else {
    const [first, second] = REPLIES[kind];
    reply = (seed % 2 === 0 ? first : second)(quoted);
  }
  return `${reply}\n\n(A demo answer from the local Vertex emulator, standing in for ${body.model}.)`;
}

/**
 * ASCII text of exactly `totalBytes` bytes, so byte-exact stream checks can recompute it:
 * numbered lines "[000000] The quick brown fox jumps over the lazy dog.\n", cut to length.
 */
export function deterministicText(totalBytes: number): string {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < totalBytes; i++) {
    const line = `[${String(i).padStart(6, '0')}] The quick brown fox jumps over the lazy dog.\n`;
    lines.push(line);
    length += line.length;
  }
  return lines.join('').slice(0, totalBytes);
}

export function answerFor(body: ChatRequestBody, directives: Directives): string {
  if (directives.reply !== undefined) return directives.reply;
  if (directives.totalBytes !== undefined) return deterministicText(directives.totalBytes);
  return defaultAnswer(body);
}

/**
 * Default stream granularity: pieces of about 40 characters (a few words, as Gemini streams)
 * but at most 16 of them, never more than 1 KiB each, and at least 4.
 */
export function defaultChunkCount(text: string): number {
  return Math.max(
    Math.min(4, text.length),
    Math.min(Math.ceil(text.length / 40), 16),
    Math.ceil(text.length / 1024),
    1,
  );
}

const isWordStart = (text: string, at: number) =>
  at > 0 && at < text.length && /\s/.test(text.charAt(at - 1)) && !/\s/.test(text.charAt(at));

/** The word start nearest to `target` within [min, max]; `target` itself when there is none. */
function nearestWordStart(text: string, target: number, min: number, max: number): number {
  for (let d = 0; target - d >= min || target + d <= max; d++) {
    for (const at of [target - d, target + d]) {
      if (at >= min && at <= max && isWordStart(text, at)) return at;
    }
  }
  return target;
}

/**
 * Splits into exactly `count` non-empty pieces (fewer only if the text is shorter). Each cut
 * moves to the nearest word start between its neighbours' even cuts, so chunks end at word
 * boundaries when the text has any; a cut never falls between the two halves of a surrogate
 * pair, so every chunk stays valid UTF-8 on the wire.
 */
export function splitIntoChunks(text: string, count: number): string[] {
  const n = Math.max(1, Math.min(count, text.length));
  const evenCut = (k: number) => Math.round((k * text.length) / n);
  const pieces: string[] = [];
  let start = 0;
  for (let k = 1; k <= n; k++) {
    let end =
      k === n ? text.length : nearestWordStart(text, evenCut(k), start + 1, evenCut(k + 1) - 1);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end += 1;
    if (end > start || k === n) pieces.push(text.slice(start, end));
    start = Math.max(start, end);
  }
  return pieces;
}

/** A rough, deterministic token count: four characters per token. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export function usageFor(body: ChatRequestBody, content: string) {
  const prompt = Math.max(1, estimateTokens(JSON.stringify(body.messages)));
  const completion = estimateTokens(content);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    // Vertex adds fields OpenAI does not have; the gateway must pass them through.
    extra_properties: { google: { traffic_type: 'ON_DEMAND' } },
  };
}

/** Vertex ids are 23 base64url characters, not "chatcmpl-...". */
export function googleResponseId(): string {
  return randomBytes(17).toString('base64url');
}

/**
 * Gemini 3 returns a thought signature that must come back on the next turn. When the history
 * carries one, the emulator answers with a new one derived from it.
 */
export function thoughtSignatureFor(
  body: ChatRequestBody,
  directives: Directives,
): string | undefined {
  if (directives.thoughtSignature !== undefined) return directives.thoughtSignature;
  const assistant = body.messages.findLast((m) => isRecord(m) && m.role === 'assistant');
  if (!isRecord(assistant)) return undefined;
  const carried = [assistant, ...(Array.isArray(assistant.tool_calls) ? assistant.tool_calls : [])]
    .filter(isRecord)
    .map((item) => item.extra_content)
    .find((extra) => extra !== undefined);
  if (carried === undefined) return undefined;
  const digest = createHash('sha256').update(JSON.stringify(carried)).digest('base64url');
  return `emu-sig-${digest.slice(0, 32)}`;
}

export const extraContent = (signature: string) => ({ google: { thought_signature: signature } });
