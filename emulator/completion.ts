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

/** The default answer: quotes the last user text verbatim and names every image URL. */
export function defaultAnswer(body: ChatRequestBody): string {
  const { text, images } = lastUserMessage(body.messages);
  const parts = [
    text ? `You said: "${text}".` : 'Hello! How can I help you today?',
    ...images.map((url) => `I received an image: ${url}.`),
  ];
  return `${parts.join(' ')} (Answered by the Vertex emulator as ${body.model}.)`;
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

/** Default stream granularity: at least 4 pieces, at most 1 KiB each. */
export function defaultChunkCount(text: string): number {
  return Math.max(Math.min(4, text.length), Math.ceil(text.length / 1024), 1);
}

/**
 * Splits into exactly `count` non-empty pieces (fewer only if the text is shorter), never
 * between the two halves of a surrogate pair, so every chunk stays valid UTF-8 on the wire.
 */
export function splitIntoChunks(text: string, count: number): string[] {
  const n = Math.max(1, Math.min(count, text.length));
  const pieces: string[] = [];
  let start = 0;
  for (let k = 1; k <= n; k++) {
    let end = k === n ? text.length : Math.round((k * text.length) / n);
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
