import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';

const gateway = createOpenAICompatible({
  name: 'vertex-gateway',
  baseURL: `${process.env.GATEWAY_URL ?? 'http://127.0.0.1:8787'}/v1`,
  apiKey: process.env.GATEWAY_API_KEY ?? 'local-dev-key',
});

const { text } = await generateText({
  model: gateway('gemini-2.5-flash'),
  prompt: 'Hello there!',
});
console.log(text);

const result = streamText({
  model: gateway('gemini-2.5-flash'),
  prompt: 'Explain edge computing in two sentences.',
});
for await (const delta of result.textStream) process.stdout.write(delta);
process.stdout.write('\n');
