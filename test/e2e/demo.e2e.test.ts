import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devVarsHaveServiceAccountKey } from '../../scripts/dev-vars.ts';
import { expectedAnswer, runExample, sseContent } from './clients.ts';
import { freePort, launch, ROOT, type RunningProcess, stopProcess } from './processes.ts';

// `npm start` exactly as the README tells a newcomer to run it, with no cloud account.

const hasRealKey = devVarsHaveServiceAccountKey(join(ROOT, '.dev.vars'));

describe.skipIf(hasRealKey)('npm start without a Google key', () => {
  let demo: RunningProcess;

  beforeAll(async () => {
    const port = await freePort();
    const { child, output } = await launch('npm', ['start'], /Ready on http:\/\/127\.0\.0\.1:\d+/, {
      PORT: String(port),
      EMULATOR_PORT: String(await freePort()),
    });
    demo = { url: `http://127.0.0.1:${port}`, output, stop: () => stopProcess(child) };
  });
  afterAll(async () => {
    await demo?.stop();
  });

  it('says it is a demo and how to switch to a real key', () => {
    expect(demo.output()).toContain('DEMO MODE');
    expect(demo.output()).toContain('local-dev-key');
    expect(demo.output()).toContain('.dev.vars');
  });

  it('answers the openai client, plain and streamed', async () => {
    const openai = new OpenAI({
      baseURL: `${demo.url}/v1`,
      apiKey: 'local-dev-key',
      maxRetries: 0,
    });
    const answer = await openai.chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'Why is the sky blue?' }],
    });
    // A model-like answer from the emulator, not an echo of the question.
    expect(answer.choices[0]?.message.content).toBe(expectedAnswer('Why is the sky blue?'));

    const stream = await openai.chat.completions.create({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'Why is the sky blue?' }],
      stream: true,
    });
    let chunks = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) chunks++;
    expect(chunks).toBeGreaterThan(1);
  });

  // The README's examples default to the demo's key; only the port differs here.
  it("answers the README's openai and curl examples with their default key", async () => {
    const openai = await runExample('openai-node.mjs', { GATEWAY_URL: demo.url });
    expect(openai.code, openai.stderr).toBe(0);
    expect(openai.stdout).toContain(expectedAnswer('Why is the sky blue?'));
    expect(openai.stdout).toContain(expectedAnswer('Write a haiku about the sea.'));

    const curl = await runExample('curl-stream.sh', { GATEWAY_URL: demo.url });
    expect(curl.code, curl.stderr).toBe(0);
    const pieces = sseContent(curl.stdout);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(expectedAnswer('Why is the sky blue?'));
  });

  it('refuses any other key', async () => {
    const openai = new OpenAI({ baseURL: `${demo.url}/v1`, apiKey: 'guess', maxRetries: 0 });
    const error = await openai.chat.completions
      .create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
